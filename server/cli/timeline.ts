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

export function formatTimeline(all: BootEvent[]): string {
  const events = lastBoot(all);
  if (events.length === 0) return 'no boot events';
  const t0 = events[0]!.at;
  const lines = [`boot at ${new Date(t0).toISOString()}`];
  for (const e of events) {
    const d = e.detail;
    const what = e.stage === 'dhcp'
      ? `${d.type}${d.ip ? ` ${d.ip}` : ''}${d.bootFile ? ` file=${d.bootFile}` : ''}`
      : `${d.file ?? ''}${d.bytes !== undefined ? ` ${d.bytes} bytes` : ''}${d.ms !== undefined ? ` in ${d.ms} ms` : ''}${d.outcome && d.outcome !== 'ok' ? ` (${d.outcome})` : ''}${d.status ? ` (HTTP ${d.status})` : ''}`;
    lines.push(`+${((e.at - t0) / 1000).toFixed(2).padStart(7)} s  ${e.stage.padEnd(6)} ${what}`);
  }
  return lines.join('\n');
}
