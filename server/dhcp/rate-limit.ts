/**
 * Packets per client MAC per second, as token buckets: a broken or hostile client
 * retransmitting in a tight loop costs one map lookup per packet, not a handler run and a
 * database read. A booting node sends about six packets in half a minute (firmware, iPXE,
 * initramfs: DISCOVER and REQUEST each), so the default of 10 a second with a burst of 10
 * never touches a real boot. The map is bounded: past `maxKeys` MACs, idle buckets go, and if
 * all are busy (a flood of made-up MACs) the map starts over.
 */
export type RateDecision = 'pass' | 'first-drop' | 'drop';

interface Bucket { tokens: number; at: number; dropping: boolean }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly perSecond: number, private readonly burst = perSecond, private readonly maxKeys = 65_536) {}

  /** `first-drop`: the first packet refused since this key last got through (worth one log line). */
  take(key: string, now: number): RateDecision {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      b = { tokens: this.burst, at: now, dropping: false };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.dropping = false;
      return 'pass';
    }
    if (b.dropping) return 'drop';
    b.dropping = true;
    return 'first-drop';
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Drop the buckets that have refilled (they hold nothing a new bucket would not). */
  private sweep(now: number): void {
    const full = (1000 * this.burst) / this.perSecond;
    for (const [k, b] of this.buckets) if (now - b.at >= full) this.buckets.delete(k);
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}
