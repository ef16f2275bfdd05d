/**
 * The stages of a node's last boot, from its boot events: shared by the API (`stages` in
 * /machines/:mac and /machines/:mac/events), the CLI's timeline and the daemon's log line.
 */
import type { BootEvent } from '../inventory/index.js';

export type BootStageName = 'dhcp' | 'files' | 'kernel' | 'nfs' | 'booted';

/**
 * A boot timeline as people read it: one line per stage, seconds since the
 * first event of the boot. A new boot starts at a DHCP DISCOVER that comes
 * more than a minute after the previous event; only the last boot is shown.
 */
export function lastBoot(events: BootEvent[]): BootEvent[] {
  let start = 0;
  for (let i = 1; i < events.length; i++) {
    const e = events[i]!;
    if (e.stage === 'dhcp' && e.detail.type === 'DISCOVER' && e.at - events[i - 1]!.at > 60_000) start = i;
  }
  return events.slice(start);
}

/**
 * Seconds from the boot's first event to the first event of each stage: DHCP, the first file
 * (TFTP or HTTP), the kernel starting, the NFS root mounted, booted.
 */
export function stageSeconds(all: BootEvent[]): Partial<Record<BootStageName, number>> {
  const events = lastBoot(all);
  if (events.length === 0) return {};
  const t0 = events[0]!.at;
  const first = (pred: (e: BootEvent) => boolean) => {
    const e = events.find(pred);
    return e ? Math.round((e.at - t0) / 10) / 100 : undefined;
  };
  const out: Partial<Record<BootStageName, number>> = {};
  const set = (k: keyof typeof out, v: number | undefined) => { if (v !== undefined) out[k] = v; };
  set('dhcp', first((e) => e.stage === 'dhcp'));
  set('files', first((e) => e.stage === 'tftp' || e.stage === 'http'));
  set('kernel', first((e) => e.stage === 'kernel'));
  set('nfs', first((e) => e.stage === 'nfs'));
  set('booted', first((e) => e.stage === 'booted'));
  return out;
}

