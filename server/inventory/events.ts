/** Boot events: the timeline of each machine's boot (DHCP, each TFTP/HTTP file, kernel, root, booted). */
import { withoutFsync, type Db } from './db.js';
import type { BootStage } from '../boot/types.js';

export interface BootEvent {
  mac: string;
  at: number;
  stage: BootStage;
  detail: Record<string, unknown>;
}

/** Boot events kept per MAC: enough for the last several boots, bounded so a flapping node cannot fill the disk. */
const KEEP_PER_MAC = 500;
/** recordSoon(): queued events are written together this long after the first, or once this many wait. */
const QUEUE_DELAY_MS = 20;
const QUEUE_MAX = 256;

type Queued = { mac: string; stage: BootStage; detail: Record<string, unknown>; at: number };

export class Events {
  private readonly insert;
  private readonly trim;
  private readonly recordManyTx;
  constructor(private readonly db: Db) {
    this.recordManyTx = db.transaction((events: Array<{ mac: string; stage: BootStage; detail: Record<string, unknown>; at: number }>) => {
      for (const e of events) this.write(e.mac, e.stage, e.detail, e.at);
    });
    this.insert = db.prepare('INSERT INTO boot_events (mac, at, stage, detail) VALUES (?, ?, ?, ?)');
    this.trim = db.prepare(`DELETE FROM boot_events WHERE mac = ? AND id <= (
      SELECT id FROM boot_events WHERE mac = ? ORDER BY id DESC LIMIT 1 OFFSET ${KEEP_PER_MAC})`);
  }

  record(mac: string, stage: BootStage, detail: Record<string, unknown>, at = Date.now()): void {
    withoutFsync(this.db, () => this.write(mac, stage, detail, at));
  }

  private write(mac: string, stage: BootStage, detail: Record<string, unknown>, at: number): void {
    const r = this.insert.run(mac, at, stage, JSON.stringify(detail));
    if (Number(r.lastInsertRowid) % 100 === 0) this.trim.run(mac, mac);
  }

  /**
   * Record an event within QUEUE_DELAY_MS, in one transaction with the
   * others of that moment. In a boot storm every node's every file is an
   * event: one commit (one fsync) each held the TFTP and HTTP servers' event
   * loop for seconds. An event is a diagnostic, not an acknowledged write: a
   * crash loses at most the last few milliseconds of them, never consistency.
   */
  recordSoon(mac: string, stage: BootStage, detail: Record<string, unknown>): void {
    this.queue.push({ mac, stage, detail, at: Date.now() });
    if (this.queue.length >= QUEUE_MAX) this.flushQueued();
    else if (!this.queueTimer) {
      this.queueTimer = setTimeout(() => this.flushQueued(), QUEUE_DELAY_MS);
      this.queueTimer.unref();
    }
  }

  /** Write what recordSoon() queued (before a read, and when the daemon stops). Never throws: events are worth less than the caller's work. */
  flushQueued(): void {
    clearTimeout(this.queueTimer);
    this.queueTimer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.recordMany(batch);
    } catch {
      this.lost += batch.length;
    }
  }

  private queue: Queued[] = [];
  private queueTimer: NodeJS.Timeout | undefined;
  /** Queued events a failed write dropped (a full disk, say). */
  lost = 0;

  /** Several events in one transaction (what recordSoon queued). */
  recordMany(events: Array<{ mac: string; stage: BootStage; detail: Record<string, unknown>; at: number }>): void {
    if (events.length === 0) return;
    // A diagnostic, not an acknowledged write: no fsync of its own (db.ts).
    withoutFsync(this.db, () => this.recordManyTx(events));
  }

  list(mac: string, limit = 200): BootEvent[] {
    this.flushQueued(); // read your own writes
    const rows = this.db.prepare<[string, number], { mac: string; at: number; stage: BootStage; detail: string }>(
      'SELECT mac, at, stage, detail FROM (SELECT * FROM boot_events WHERE mac = ? ORDER BY id DESC LIMIT ?) ORDER BY at, id').all(mac, limit);
    return rows.map((r) => ({ mac: r.mac, at: r.at, stage: r.stage, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }
}
