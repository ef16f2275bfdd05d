import type { BootEvent } from '../inventory/index.js';

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
export function stageSeconds(all: BootEvent[]): Partial<Record<'dhcp' | 'files' | 'kernel' | 'nfs' | 'booted', number>> {
  const events = lastBoot(all);
  if (events.length === 0) return {};
  const t0 = events[0]!.at;
  const first = (pred: (e: BootEvent) => boolean) => {
    const e = events.find(pred);
    return e ? Math.round((e.at - t0) / 10) / 100 : undefined;
  };
  const out: Partial<Record<'dhcp' | 'files' | 'kernel' | 'nfs' | 'booted', number>> = {};
  const set = (k: keyof typeof out, v: number | undefined) => { if (v !== undefined) out[k] = v; };
  set('dhcp', first((e) => e.stage === 'dhcp'));
  set('files', first((e) => e.stage === 'tftp' || e.stage === 'http'));
  set('kernel', first((e) => e.stage === 'kernel'));
  set('nfs', first((e) => e.stage === 'nfs'));
  set('booted', first((e) => e.stage === 'booted'));
  return out;
}

export function formatTimeline(all: BootEvent[]): string {
  const events = lastBoot(all);
  if (events.length === 0) return 'no boot events';
  const t0 = events[0]!.at;
  const lines = [`boot at ${new Date(t0).toISOString()}`];
  for (const e of events) {
    const d = e.detail;
    const what = e.stage === 'dhcp'
      ? `${d.type}${d.ip ? ` ${d.ip}` : ''}${d.bootFile ? ` file=${d.bootFile}` : ''}`
      : e.stage === 'kernel' ? `started${d.kernel ? ` ${d.kernel}` : ''}`
      : e.stage === 'nfs' ? `root mounted${d.root ? ` ${d.root}` : ''}`
      : e.stage === 'booted' ? `up as ${d.hostname ?? '?'} ${d.ip ?? ''}`
      : `${d.file ?? ''}${d.bytes !== undefined ? ` ${d.bytes} bytes` : ''}${d.ms !== undefined ? ` in ${d.ms} ms` : ''}${d.outcome && d.outcome !== 'ok' ? ` (${d.outcome})` : ''}${d.status ? ` (HTTP ${d.status})` : ''}`;
    lines.push(`+${((e.at - t0) / 1000).toFixed(2).padStart(7)} s  ${e.stage.padEnd(6)} ${what}`);
  }
  const stages = stageSeconds(events);
  if (Object.keys(stages).length > 1) lines.push(`stages: ${Object.entries(stages).map(([k, v]) => `${k} +${v!.toFixed(2)} s`).join(', ')}`);
  return lines.join('\n');
}
