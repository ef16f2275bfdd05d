/**
 * A strict reader of the Prometheus text format 0.0.4 as `MetricsRegistry`
 * writes it (no timestamps, no untyped metrics): used by the tests in place
 * of `promtool check metrics`, and handy for scripts reading `/metrics`.
 */

export interface ParsedSample { name: string; labels: Record<string, string>; value: number }
export interface ParsedMetric { name: string; help: string; type: string; samples: ParsedSample[] }

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '(?:[^"\\\\\\n]|\\\\[\\\\"n])*';
const VALUE = '(?:NaN|[+-]Inf|[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?)';
const HELP_RE = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(${LABEL}="${LABEL_VALUE}"(?:,${LABEL}="${LABEL_VALUE}")*)?\\})? (${VALUE})$`);
const PAIR_RE = new RegExp(`(${LABEL})="(${LABEL_VALUE})"`, 'g');

function unescape(v: string): string {
  return v.replace(/\\([\\"n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Parse and check an exposition: every line matches the grammar, each metric has
 * one HELP then one TYPE before its samples, samples are contiguous, counters end
 * in `_total`, no series repeats, and the text ends with a newline. Throws the
 * first problem with its line number.
 */
export function parseExposition(text: string): Map<string, ParsedMetric> {
  const metrics = new Map<string, ParsedMetric>();
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  let current: ParsedMetric | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  const seriesSeen = new Set<string>();
  for (const [i, line] of lines.entries()) {
    const at = `line ${i + 1}: ${JSON.stringify(line)}`;
    let m: RegExpExecArray | null;
    if ((m = HELP_RE.exec(line))) {
      if (metrics.has(m[1]!) || pendingHelp) throw new Error(`${at}: HELP out of place`);
      pendingHelp = { name: m[1]!, help: unescape(m[2]!) };
      continue;
    }
    if ((m = TYPE_RE.exec(line))) {
      if (!pendingHelp || pendingHelp.name !== m[1]) throw new Error(`${at}: TYPE without its HELP just before`);
      if (m[2] === 'counter' && !m[1]!.endsWith('_total')) throw new Error(`${at}: counter name must end in _total`);
      current = { name: m[1]!, help: pendingHelp.help, type: m[2]!, samples: [] };
      metrics.set(current.name, current);
      pendingHelp = null;
      continue;
    }
    if (line.startsWith('#')) throw new Error(`${at}: unexpected comment`);
    if (!(m = SAMPLE_RE.exec(line))) throw new Error(`${at}: not a valid sample line`);
    const cur = current;
    if (!cur || pendingHelp || m[1] !== cur.name) throw new Error(`${at}: sample outside its metric's block`);
    const labels: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(PAIR_RE)) {
      if (p[1]! in labels) throw new Error(`${at}: label ${p[1]} repeated`);
      labels[p[1]!] = unescape(p[2]!);
    }
    const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(key)) throw new Error(`${at}: duplicate series`);
    seriesSeen.add(key);
    const raw = m[3]!;
    const value = raw === 'NaN' ? NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    cur.samples.push({ name: m[1]!, labels, value });
  }
  if (pendingHelp) throw new Error(`HELP for ${pendingHelp.name} without TYPE`);
  return metrics;
}

/** The value of one series, or undefined: `sampleValue(parsed, 'x_total', { type: 'DISCOVER' })` (labels must match exactly). */
export function sampleValue(metrics: Map<string, ParsedMetric>, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return metrics.get(name)?.samples.find((s) => JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}
