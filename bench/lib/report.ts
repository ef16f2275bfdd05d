/**
 * The shape every benchmark reports in, so `npm run bench` (bench/all.ts)
 * can put them in one JSON file and one markdown table.
 *
 * A bench section is a list of rows. Each row is one figure for Sidereal and
 * the same figure for each reference server measured in the same run with
 * the same client (tftpd-hpa, dnsmasq, nginx), every figure a median over
 * several runs with its min and max. The ratio is always sidereal / other,
 * whether more is better (throughput: target >= x) or less is better (time:
 * target <= x), so a reader never has to guess which way it was divided.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import path from 'node:path';
import { installDir } from '../../server/install-dir.js';

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** How many runs the median is over. */
  n: number;
}

export interface Target {
  /** Reference the ratio is taken against (a key of `others`); absent for an absolute target. */
  vs?: string;
  /** '>=' : sidereal/vs (or the absolute figure) must be at least `value`; '<=' at most. */
  op: '>=' | '<=';
  value: number;
  /** Whether the target compares the ratio or Sidereal's own figure. */
  on: 'ratio' | 'value';
}

export interface Row {
  /** What was measured, e.g. "curl blksize 1468, 1 client". */
  case: string;
  /** e.g. "throughput", "p99 latency", "time to last node". */
  metric: string;
  /** e.g. "MB/s", "ms", "s", "exchanges/s", "MiB". */
  unit: string;
  sidereal: Stat;
  /** The same figure for each reference server, keyed by its name. */
  others: Record<string, Stat>;
  target?: Target;
  /** Anything a reader needs to read this row right (failures, a cap hit). */
  note?: string;
}

export interface Section {
  /** Short key: 'tftp', 'dhcp', 'http', 'storm', 'inventory', 'qemu-storm'. */
  name: string;
  title: string;
  rows: Row[];
  /** How it was measured: transport, file sizes, runs, client versions. */
  notes: string[];
  /** Raw figures (every run) for the JSON. */
  raw?: unknown;
}

export function stat(xs: number[]): Stat {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Percentile by nearest rank (p in 0..100) of raw samples. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function ratio(row: Row, vs: string): number | undefined {
  const o = row.others[vs];
  if (!o || !(o.median > 0)) return undefined;
  return row.sidereal.median / o.median;
}

/** true/false when the row has a target, undefined when it has none or lacks the reference. */
export function targetMet(row: Row): boolean | undefined {
  const t = row.target;
  if (!t) return undefined;
  const x = t.on === 'value' ? row.sidereal.median : t.vs ? ratio(row, t.vs) : undefined;
  if (x === undefined || Number.isNaN(x)) return undefined;
  return t.op === '>=' ? x >= t.value : x <= t.value;
}

function num(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

export function fmtStat(s: Stat | undefined): string {
  if (!s || s.n === 0) return '—';
  return s.n > 1 && s.min !== s.max ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : num(s.median);
}

function targetText(row: Row): string {
  const t = row.target;
  if (!t) return '';
  const what = t.on === 'value' ? '' : `× ${t.vs}`;
  const met = targetMet(row);
  return `${t.op} ${t.value}${what ? ' ' + what : ` ${row.unit}`} ${met === undefined ? '?' : met ? '✔' : '✘'}`;
}

/** One markdown table per section: case, metric, Sidereal, each reference, ratios, target. */
export function sectionMarkdown(s: Section): string {
  const refs = [...new Set(s.rows.flatMap((r) => Object.keys(r.others)))];
  const head = ['case', 'metric', 'Sidereal', ...refs, ...refs.map((r) => `× ${r}`), 'target'];
  const lines = [`### ${s.title}`, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of s.rows) {
    const cells = [
      r.case + (r.note ? ` (${r.note})` : ''),
      `${r.metric}, ${r.unit}`,
      fmtStat(r.sidereal),
      ...refs.map((ref) => fmtStat(r.others[ref])),
      ...refs.map((ref) => { const x = ratio(r, ref); return x === undefined ? '—' : x.toFixed(2); }),
      targetText(r),
    ];
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  if (s.notes.length) lines.push('', ...s.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}

/**
 * Every row that carries a target, in one table: the figure, the reference,
 * the ratio and whether it is met. It heads bench/RESULTS.md and the README.
 */
export function targetsMarkdown(sections: Section[]): string {
  const rows = sections.flatMap((s) => s.rows.filter((r) => r.target).map((r) => ({ s, r })));
  const met = rows.filter(({ r }) => targetMet(r) === true).length;
  const lines = [
    `**Targets: ${met} of ${rows.length} met.**`,
    '',
    '| section | case | metric | Sidereal | reference | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { s, r } of rows) {
    const t = r.target!;
    const ref = t.vs ? `${fmtStat(r.others[t.vs])} (${t.vs})` : '—';
    const x = t.vs ? ratio(r, t.vs) : undefined;
    const verdict = targetMet(r);
    lines.push(`| ${[s.name, r.case, `${r.metric}, ${r.unit}`, fmtStat(r.sidereal), ref, x === undefined ? '—' : x.toFixed(2),
      `${t.op} ${t.value}${t.on === 'ratio' ? '×' : ' ' + r.unit}`, verdict === undefined ? '?' : verdict ? 'yes' : '**no**'].join(' | ').replace(/\n/g, ' ')} |`);
  }
  return lines.join('\n') + '\n';
}

export interface MachineInfo { node: string; kernel: string; cpu: string; cpus: number }

export function machineInfo(): MachineInfo {
  return { node: process.version, kernel: release(), cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length };
}

/** bench/results, or $SIDEREAL_BENCH_RESULTS (the smoke test writes to a temp dir, never into the repository). */
export const resultsDir = (): string => process.env.SIDEREAL_BENCH_RESULTS ?? path.join(installDir(), 'bench', 'results');

/** Date stamp for file names: 2026-11-23T18-30-00. */
export function stamp(d = new Date()): string {
  return d.toISOString().slice(0, 19).replace(/:/g, '-');
}

/**
 * What a bench script does when run on its own: print its table and write
 * bench/results/<name>-<stamp>.json. Returns the file written.
 */
export function writeSection(s: Section): string {
  mkdirSync(resultsDir(), { recursive: true });
  const file = path.join(resultsDir(), `${s.name}-${stamp()}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), section: s }, null, 2) + '\n');
  return file;
}

/** Entry point helper for a bench script run directly: run, print, write, exit code 1 on error. */
export async function runStandalone(run: () => Promise<Section>): Promise<void> {
  try {
    const s = await run();
    process.stdout.write('\n' + sectionMarkdown(s) + '\n');
    process.stdout.write(`wrote ${path.relative(process.cwd(), writeSection(s))}\n`);
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  }
}

/** True when the module whose import.meta.url is given was run as the script (not imported by bench/all.ts). */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(metaUrl).pathname);
}
