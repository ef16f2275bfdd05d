/**
 * A small metrics registry rendering the Prometheus text exposition format,
 * version 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
 * `# HELP` and `# TYPE` per metric, then one `name{label="value"} number` line
 * per series. No dependency, no histograms: counters and gauges are enough here.
 *
 * Label values must come from bounded sets (message types, outcomes, states):
 * every distinct value is a series kept forever, so never pass a MAC or a path.
 * Hot paths should bind a series once with `.labels(...)` and call `.inc()`.
 */

export type Labels = Readonly<Record<string, string>>;
export interface Sample { labels: Labels; value: number }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Joins label values into a series key; cannot occur in the values callers pass (bounded enums). */
const SEP = '\u0000';

/** A counter or gauge bound to one set of label values. */
export interface BoundCounter { inc(n?: number): void }
export interface BoundGauge { set(v: number): void; inc(n?: number): void; dec(n?: number): void }

interface Series { values: string[]; value: number }

/** `\`, `"` and newline are the only escapes in a label value (format 0.0.4). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

/** In HELP text only `\` and newline are escaped. */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

abstract class Metric {
  protected readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly type: 'counter' | 'gauge',
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    const seen = new Set<string>();
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`${name}: invalid label name ${JSON.stringify(l)}`);
      if (seen.has(l)) throw new Error(`${name}: duplicate label name ${l}`);
      seen.add(l);
    }
    // A label-less metric always has its one series, so it renders as 0 before the first event.
    if (labelNames.length === 0) this.series.set('', { values: [], value: 0 });
  }

  /** The series for these labels, created at first use. Throws on a missing or unknown label name. */
  protected seriesFor(labels: Labels | undefined): Series {
    const names = this.labelNames;
    if (names.length === 0) {
      if (labels && Object.keys(labels).length) throw new Error(`${this.name}: takes no labels`);
      return this.series.get('')!;
    }
    if (!labels) throw new Error(`${this.name}: labels ${names.join(', ')} required`);
    let key = '';
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i]!];
      if (typeof v !== 'string') throw new Error(`${this.name}: label ${names[i]} missing`);
      key = i === 0 ? v : key + SEP + v;
    }
    let s = this.series.get(key);
    if (!s) {
      if (Object.keys(labels).length !== names.length) throw new Error(`${this.name}: unknown label in ${Object.keys(labels).join(', ')}`);
      s = { values: names.map((n) => labels[n]!), value: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** The series to render, at scrape time. */
  samples(): Iterable<{ values: readonly string[]; value: number }> {
    return this.series.values();
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    const names = this.labelNames;
    for (const s of this.samples()) {
      let line = this.name;
      if (names.length) {
        line += '{';
        for (let i = 0; i < names.length; i++) line += `${i ? ',' : ''}${names[i]}="${escapeLabelValue(s.values[i]!)}"`;
        line += '}';
      }
      out.push(`${line} ${formatValue(s.value)}`);
    }
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    super(name, help, labelNames, 'counter');
  }

  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0)) throw new Error(`${this.name}: a counter only goes up (inc by ${n})`);
    this.seriesFor(labels).value += n;
  }

  /** Bind one series (created now, so it renders as 0 until the first inc). */
  labels(labels?: Labels): BoundCounter {
    const s = this.seriesFor(labels);
    const name = this.name;
    return {
      inc(n = 1) {
        if (!(n >= 0)) throw new Error(`${name}: a counter only goes up (inc by ${n})`);
        s.value += n;
      },
    };
  }

  /** Current value of one series (0 if never incremented): for tests and the CLI. */
  get(labels?: Labels): number {
    return this.seriesFor(labels).value;
  }
}

export interface GaugeOptions {
  /**
   * Evaluated at every scrape; its samples replace the ones set with `set`.
   * Samples with the same labels are summed. A collect that throws renders
   * no samples for this gauge (and is reported to the registry's onCollectError).
   */
  collect?: () => Iterable<Sample>;
}

export class Gauge extends Metric {
  private readonly collect: (() => Iterable<Sample>) | undefined;

  constructor(name: string, help: string, labelNames: readonly string[], opts: GaugeOptions = {}, private readonly onError?: (name: string, err: unknown) => void) {
    super(name, help, labelNames, 'gauge');
    this.collect = opts.collect;
    if (this.collect && labelNames.length === 0) this.series.clear();
  }

  set(labels: Labels | undefined, v: number): void {
    this.seriesFor(labels).value = v;
  }

  labels(labels?: Labels): BoundGauge {
    const s = this.seriesFor(labels);
    return {
      set(v) { s.value = v; },
      inc(n = 1) { s.value += n; },
      dec(n = 1) { s.value -= n; },
    };
  }

  override samples(): Iterable<{ values: readonly string[]; value: number }> {
    if (!this.collect) return this.series.values();
    const names = this.labelNames;
    const merged = new Map<string, { values: string[]; value: number }>();
    try {
      for (const sample of this.collect()) {
        const values = names.map((n) => String(sample.labels[n] ?? ''));
        const key = values.join(SEP);
        const prev = merged.get(key);
        if (prev) prev.value += sample.value;
        else merged.set(key, { values, value: sample.value });
      }
    } catch (err) {
      this.onError?.(this.name, err);
      return [];
    }
    return merged.values();
  }
}

export interface RegistryOptions {
  /** Called when a gauge's collect callback throws during render. */
  onCollectError?: (metric: string, err: unknown) => void;
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Counter | Gauge>();

  constructor(private readonly opts: RegistryOptions = {}) {}

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], opts: GaugeOptions = {}): Gauge {
    return this.add(new Gauge(name, help, labelNames, opts, this.opts.onCollectError));
  }

  /** The whole exposition, metrics in registration order, ending with a newline. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) m.render(out);
    return out.length ? `${out.join('\n')}\n` : '';
  }

  private add<M extends Counter | Gauge>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} already registered`);
    this.metrics.set(m.name, m);
    return m;
  }
}

/** The content type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
