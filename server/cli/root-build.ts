/**
 * `sidereal root build|builds|cancel|log|generations|rollback`: root builds through the admin
 * API. `root build` follows the build's event stream with a progress bar and the current step
 * (a line per step when stderr is not a terminal; every command's output with --log) and exits
 * 0 when it succeeds, 1 when it fails or is cancelled. Ctrl-C stops following a build the
 * daemon runs (it goes on; `root cancel` stops it); with --offline the build runs in this
 * process, so Ctrl-C cancels it, cleanly.
 */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, table } from './context.js';
import type { Build } from '../inventory/index.js';

export const BUILD_HELP = `  root build NAME [--log] [--detach]  build or rebuild a root from roots/NAME.yaml, following its progress
  root builds [NAME]                  recent builds: state, step, times
  root cancel NAME|BUILD-ID           cancel the root's running build
  root log BUILD-ID                   a build's full log
  root generations NAME               the built generations, and which one is current
  root rollback NAME [--to GEN]       make the previous (or a given) generation live again`;

const ended = (b: Build) => b.state !== 'queued' && b.state !== 'running';

export async function rootBuildCommand(ctx: CliContext, sub: string, rest: string[]): Promise<number> {
  switch (sub) {
    case 'build': return build(ctx, rest);
    case 'builds': {
      if (rest.length > 1) throw new UsageError('root builds [NAME]');
      const q = rest[0] ? `?root=${encodeURIComponent(rest[0])}` : '';
      const { items } = await ctx.api<{ items: Build[] }>('GET', `/api/v1/builds${q}`);
      ctx.out(ctx.json ? JSON.stringify(items) : table(items.map((b) => ({
        ...b, progress: `${Math.round(b.progress * 100)}%`, started: when(b.startedAt ?? b.createdAt), took: took(b),
        outcome: b.error ?? b.result?.kernel ?? '',
      })), ['id', 'root', 'state', 'step', 'progress', 'started', 'took', 'generation', 'outcome']));
      return 0;
    }
    case 'cancel': {
      if (rest.length !== 1) throw new UsageError('root cancel NAME|BUILD-ID');
      const id = await buildIdOf(ctx, rest[0]!);
      const b = await ctx.api<Build>('POST', `/api/v1/builds/${id}/cancel`);
      ctx.out(ctx.json ? JSON.stringify(b) : `build ${b.id} of ${b.root}: ${ended(b) ? b.state : 'cancelling'}`);
      return 0;
    }
    case 'log': {
      if (rest.length !== 1 || !/^\d+$/.test(rest[0]!)) throw new UsageError('root log BUILD-ID');
      process.stdout.write(await ctx.text(`/api/v1/builds/${rest[0]}/log`));
      return 0;
    }
    case 'generations': {
      if (rest.length !== 1) throw new UsageError('root generations NAME');
      const { items } = await ctx.api<{ items: Array<Record<string, unknown>> }>('GET', `/api/v1/roots/${encodeURIComponent(rest[0]!)}/generations`);
      ctx.out(ctx.json ? JSON.stringify(items) : table(items.map((g) => ({
        ...g, current: g.current ? '*' : '', built: g.builtAt ? when(g.builtAt as number) : (g.building ? 'building' : 'incomplete'),
      })), ['current', 'name', 'kver', 'built', 'build', 'kernel']));
      return 0;
    }
    case 'rollback': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { to: { type: 'string' } } });
      if (positionals.length !== 1) throw new UsageError('root rollback NAME [--to gen-...]');
      const r = await ctx.api<{ generation: string; root: { kernel: string } }>('POST', `/api/v1/roots/${encodeURIComponent(positionals[0]!)}/rollback`,
        values.to ? { generation: values.to } : {});
      ctx.out(ctx.json ? JSON.stringify(r) : `${positionals[0]} now boots ${r.generation} (${r.root.kernel})`);
      return 0;
    }
    default:
      throw new UsageError(`root ${sub}`);
  }
}

async function build(ctx: CliContext, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { log: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError('root build NAME [--log] [--detach]');
  if (values.detach && ctx.offline) throw new UsageError('root build --detach needs the daemon: with --offline the build runs in this process');
  const name = positionals[0]!;
  const queued = await ctx.api<Build>('POST', `/api/v1/roots/${encodeURIComponent(name)}/builds`);
  if (values.detach) {
    ctx.out(ctx.json ? JSON.stringify(queued) : `build ${queued.id} of ${name} queued: follow with \`sidereal root builds ${name}\`, log with \`sidereal root log ${queued.id}\``);
    return 0;
  }
  if (!ctx.json) process.stderr.write(`build ${queued.id} of ${name} (log: sidereal root log ${queued.id})\n`);
  const bar = new ProgressLine(process.stderr);
  const ac = new AbortController();
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) return;
    interrupted = true;
    if (ctx.offline) {
      bar.note('cancelling (the build runs in this process)...');
      void ctx.api('POST', `/api/v1/builds/${queued.id}/cancel`).catch(() => undefined);
    } else {
      ac.abort();
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  let final: Build | undefined;
  try {
    await ctx.events(`/api/v1/builds/${queued.id}/events`, (event, data) => {
      if (event === 'build') bar.update(data as Build);
      else if (event === 'step') bar.step(data as { step: string; title: string; progress: number });
      else if (event === 'log' && values.log) bar.note(`[${(data as { step: string }).step}] ${(data as { line: string }).line}`);
      else if (event === 'end') final = data as Build;
    }, ac.signal);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    bar.done();
  }
  if (!final) {
    final = await ctx.api<Build>('GET', `/api/v1/builds/${queued.id}`);
    if (!ended(final)) {
      process.stderr.write(`stopped following build ${final.id}; it goes on in the daemon (sidereal root cancel ${name} stops it)\n`);
      if (ctx.json) ctx.out(JSON.stringify(final));
      return 0;
    }
  }
  if (ctx.json) ctx.out(JSON.stringify(final));
  else if (final.state === 'succeeded') {
    const r = final.result!;
    ctx.out(`built ${name} ${final.generation} in ${r.seconds.toFixed(0)} s: ${r.kernel}, ${r.initrd} (tree ${mib(r.treeBytes)}, initrd ${mib(r.initrdBytes)})${r.pruned.length ? `; removed ${r.pruned.join(', ')}` : ''}`);
  } else {
    process.stderr.write(`build ${final.id} of ${name} ${final.state}${final.step ? ` at step ${final.step}` : ''}: ${final.error ?? ''}\n`
      + `the live root is unchanged; the log: sidereal root log ${final.id}\n`);
  }
  return final.state === 'succeeded' ? 0 : 1;
}

/** A build id from an id, or the running build of a root. */
async function buildIdOf(ctx: CliContext, arg: string): Promise<number> {
  if (/^\d+$/.test(arg)) return Number(arg);
  const { items } = await ctx.api<{ items: Build[] }>('GET', `/api/v1/builds?root=${encodeURIComponent(arg)}&limit=1`);
  const b = items[0];
  if (!b || ended(b)) throw new UsageError(`root ${arg} has no queued or running build to cancel`);
  return b.id;
}

/** One status line, redrawn in place on a terminal; a line per step otherwise. */
class ProgressLine {
  private readonly tty: boolean;
  private readonly started = Date.now();
  private last = '';
  private title = 'queued';
  private fraction = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.tty = !!out.isTTY;
    if (this.tty) this.timer = setInterval(() => this.draw(), 1000);
  }

  update(b: Build): void {
    if (b.stepTitle) this.step({ step: b.step ?? '', title: b.stepTitle, progress: b.progress });
    else this.draw();
  }

  step(s: { step: string; title: string; progress: number }): void {
    this.title = `${s.step}: ${s.title}`;
    this.fraction = s.progress;
    if (!this.tty) {
      if (this.title !== this.last) this.out.write(`[${pct(this.fraction)}] ${this.title}\n`);
      this.last = this.title;
      return;
    }
    this.draw();
  }

  note(line: string): void {
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(line + '\n');
    this.draw();
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) this.out.write('\r\x1b[K');
  }

  private draw(): void {
    if (!this.tty) return;
    const width = 24;
    const full = Math.round(this.fraction * width);
    const secs = Math.round((Date.now() - this.started) / 1000);
    const cols = this.out.columns ?? 100;
    const line = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${pct(this.fraction)} ${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s ${this.title}`;
    this.out.write(`\r\x1b[K${line.slice(0, cols - 1)}`);
  }
}

const pct = (f: number) => `${Math.round(f * 100)}%`.padStart(4);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
function took(b: Build): string {
  if (!b.startedAt) return '';
  const s = Math.round(((b.finishedAt ?? Date.now()) - b.startedAt) / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
