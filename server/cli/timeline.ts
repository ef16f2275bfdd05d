import type { BootEvent } from '../inventory/index.js';
import { lastBoot, stageSeconds } from '../boot/timeline.js';

/** The last boot as people read it: one line per event, seconds since its first, then the stages. */
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
