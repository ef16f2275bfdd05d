/**
 * Real root builds, side by side, for one recipe (`roots/bookworm-minimal.yaml` or --recipe):
 *
 *   debootstrap  Sidereal's buildRoot, tool debootstrap: first build with an empty package cache
 *                (unless --cache-dir is given and warm), then rebuilds with the cache warm (a new
 *                generation, `current` switched); --builds builds in all (default 2).
 *   mmdebstrap   the same with `tool: 'mmdebstrap'`, with its own cache (empty unless
 *                --mmdebstrap-cache-dir is given), so the two bootstrap tools can be compared.
 *   by-hand      what an admin following SIDUS types (bench/root-by-hand.ts): debootstrap, mount
 *                proc/sys/dev/pts, policy-rc.d, apt-get install, the kernel, dracut in the chroot,
 *                umount. With the debootstrap builds' cache, warm (debootstrap --cache-dir and the
 *                apt archive), to compare with Sidereal's rebuild; --by-hand-cold-apt: apt downloads.
 *
 * Prints seconds and sizes per build, then one table (variant, seconds, tree MiB, initrd MiB),
 * and writes it as JSON to bench/results/root-build-<date>.json (or --out). Each variant builds
 * in its own temporary dir; all are removed at the end (the caches too, unless given), after
 * checking nothing is mounted under them. Ctrl-C (SIGINT/SIGTERM/SIGHUP) aborts the running
 * build, which unmounts and removes what it made, then the same cleanup runs.
 * Needs root, debootstrap, mmdebstrap and the Debian mirror.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/root-build.js [--only debootstrap,mmdebstrap,by-hand]
 *     [--recipe roots/x.yaml] [--cache-dir DIR] [--mmdebstrap-cache-dir DIR] [--builds 2]
 *     [--by-hand-cold-apt] [--work-dir DIR] [--keep] [--out FILE] [--verbose]
 */
import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildRoot, BuildError, type BuildResult } from '../server/roots/build.js';
import { listGenerations } from '../server/roots/generations.js';
import { mountsUnder, unmountAll } from '../server/roots/mounts.js';
import { planBuild } from '../server/roots/plan.js';
import { loadRecipe } from '../server/roots/recipe.js';
import { run, abortOnSignals, RunError } from '../server/run.js';
import { buildByHand } from './root-by-hand.js';

const VARIANTS = ['debootstrap', 'mmdebstrap', 'by-hand'] as const;
type Tool = 'debootstrap' | 'mmdebstrap';

const { values } = parseArgs({
  options: {
    recipe: { type: 'string', default: 'roots/bookworm-minimal.yaml' },
    only: { type: 'string', default: VARIANTS.join(',') },
    'cache-dir': { type: 'string' },
    'mmdebstrap-cache-dir': { type: 'string' },
    'work-dir': { type: 'string' },
    builds: { type: 'string', default: '2' },
    'by-hand-cold-apt': { type: 'boolean', default: false },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

const only = values.only!.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = only.filter((v) => !(VARIANTS as readonly string[]).includes(v));
if (unknown.length > 0 || only.length === 0) {
  console.error(`root-build: --only takes a comma list of ${VARIANTS.join(', ')} (got ${values.only})`);
  process.exit(2);
}
const selected = VARIANTS.filter((v) => only.includes(v));
const builds = Number(values.builds);
if (!Number.isInteger(builds) || builds < 1 || builds > 10) {
  console.error('root-build: --builds must be 1..10');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('root-build: needs root (debootstrap, chroot, mount)');
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..'); // dist/bench -> the repo
const logger = pino({ level: values.verbose ? 'info' : 'warn' });
const recipe = loadRecipe(path.resolve(values.recipe!));
const work = values['work-dir'] ? path.resolve(values['work-dir']) : await mkdtemp(path.join(tmpdir(), 'sidereal-build-'));
await mkdir(work, { recursive: true });
const cacheDirs: Record<Tool, string> = {
  debootstrap: values['cache-dir'] ? path.resolve(values['cache-dir']) : path.join(work, 'cache'),
  mmdebstrap: values['mmdebstrap-cache-dir'] ? path.resolve(values['mmdebstrap-cache-dir']) : path.join(work, 'cache-mmdebstrap'),
};
const { signal, dispose } = abortOnSignals();

const MiB = 2 ** 20;
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

interface Row {
  variant: string;
  tool: Tool;
  build: 'first' | 'rebuild' | 'by-hand';
  /** Empty at the start of this build (a fresh cache dir), or warm from an earlier one. */
  cache: 'empty' | 'warm';
  ok: boolean;
  seconds: number | null;
  treeMiB: number | null;
  initrdMiB: number | null;
  bootstrapSeconds: number | null;
  kver?: string;
  generation?: string;
  lsinitrd?: { overlay: boolean; hook: boolean };
  /** Seconds per step (Sidereal: the plan's steps; by hand: the admin's). */
  steps?: Array<{ step: string; seconds: number }>;
  error?: string;
  /** The failing command's argv and the end of its stderr/stdout (a bootstrap error, say). */
  failedCommand?: { argv: string[]; exitCode: number | null; output: string[] };
  commands?: string[];
  note?: string;
}

const rows: Row[] = [];
let failed = false;
const started = new Date();

try {
  for (const v of selected) {
    if (signal.aborted) break;
    if (v === 'by-hand') await byHand();
    else await sidereal(v);
  }
} catch (e) {
  failed = true;
  console.error(`root-build: ${(e as Error).message}`);
} finally {
  // Still catching Ctrl-C here: a second one must not kill the cleanup half-way.
  failed = (await cleanup()) || failed;
  dispose();
}

if (rows.length > 0) {
  printTable();
  const out = values.out ? path.resolve(values.out) : path.join(repo, 'bench', 'results', `root-build-${started.toISOString().slice(0, 10)}.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({
    date: started.toISOString(),
    host: { cpus: cpus().length },
    recipe: { file: path.relative(repo, path.resolve(values.recipe!)), name: recipe.name, suite: recipe.suite, arch: recipe.arch, variant: recipe.variant, mirror: recipe.mirror, kernel: recipe.kernel },
    options: {
      only: selected, builds, cacheDir: values['cache-dir'] ?? '(temporary)', mmdebstrapCacheDir: values['mmdebstrap-cache-dir'] ?? '(temporary)',
      byHandApt: values['by-hand-cold-apt'] ? 'download' : 'warm (the debootstrap builds\' apt cache, bind-mounted)',
    },
    interrupted: signal.aborted,
    rows,
    table: rows.map((r) => ({ variant: r.variant, seconds: r.seconds, treeMiB: r.treeMiB, initrdMiB: r.initrdMiB })),
    ...comparison(),
  }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
process.exit(failed || signal.aborted ? 1 : 0);

// ---------------------------------------------------------------------------------------------

async function sidereal(tool: Tool): Promise<void> {
  const dir = path.join(work, tool);
  const rootsDir = path.join(dir, 'roots');
  const tftpRoot = path.join(dir, 'tftp');
  const cacheDir = cacheDirs[tool];
  if (tool === 'mmdebstrap') {
    const argv = planBuild(recipe, { generationDir: '/GEN', cacheDir, tool })[0]!.run[0]!;
    if (argv.kind === 'exec') console.log(`mmdebstrap argv (plan.ts): ${argv.argv.join(' ')}`);
  }
  for (let i = 0; i < builds; i++) {
    if (signal.aborted) return;
    const cache = (await debCount(cacheDir)) > 0 ? 'warm' : 'empty';
    const build = i === 0 ? 'first' : 'rebuild';
    const variant = `sidereal ${tool}, ${build === 'first' ? 'first build' : 'rebuild'} (${cache} cache)`;
    console.log(`== ${variant}`);
    let last = '';
    const starts: Array<{ step: string; at: number }> = [];
    try {
      const r: BuildResult = await buildRoot({
        recipe, rootsDir, tftpRoot, cacheDir, logger, signal, tool,
        onProgress: (step, fraction) => {
          if (step.id !== last) {
            process.stderr.write(`  [${(fraction * 100).toFixed(0).padStart(3)}%] ${step.id}: ${step.title}\n`);
            starts.push({ step: step.id, at: performance.now() });
          }
          if (fraction === 1) starts.push({ step: '(end)', at: performance.now() });
          last = step.id;
        },
      });
      const steps = stepDurations(starts);
      // The root's own lsinitrd (the build server need not have dracut).
      const lsinitrd = await run(['chroot', r.generationDir, 'lsinitrd', `/boot/initrd.img-${r.kver}`], { logger, reject: false });
      const has = { overlay: lsinitrd.stdout.includes('overlay.ko'), hook: lsinitrd.stdout.includes('sidereal-mount.sh') };
      const current = await readlink(path.join(rootsDir, recipe.name, 'current'));
      console.log(`${variant}: ${r.seconds.toFixed(1)} s (bootstrap ${steps.find((s) => s.step === 'bootstrap')?.seconds ?? '?'} s), `
        + `tree ${mib(r.sizes.treeBytes)}, initrd ${mib(r.sizes.initrdBytes)}, kver ${r.kver}, ${r.kernel} + ${r.initrd}; current -> ${current}; `
        + `lsinitrd: overlay.ko ${has.overlay ? 'yes' : 'NO'}, sidereal-mount.sh ${has.hook ? 'yes' : 'NO'}`);
      if (!has.overlay || !has.hook) failed = true;
      rows.push({
        variant, tool, build, cache, ok: has.overlay && has.hook, seconds: round1(r.seconds),
        treeMiB: round1(r.sizes.treeBytes / MiB), initrdMiB: round1(r.sizes.initrdBytes / MiB),
        bootstrapSeconds: steps.find((s) => s.step === 'bootstrap')?.seconds ?? null,
        kver: r.kver, generation: r.generation, lsinitrd: has, steps,
      });
    } catch (e) {
      failed = true;
      const row: Row = {
        variant, tool, build, cache, ok: false, seconds: null, treeMiB: null, initrdMiB: null, bootstrapSeconds: null,
        error: (e as Error).message, steps: stepDurations(starts),
      };
      const cmd = runErrorOf(e);
      if (cmd) row.failedCommand = cmd;
      rows.push(row);
      console.error(`${variant}: FAILED: ${(e as Error).message}`);
      if (cmd) {
        console.error(`  command: ${cmd.argv.join(' ')}\n  exit code: ${cmd.exitCode ?? 'none'}; its last lines:`);
        for (const l of cmd.output) console.error(`    ${l}`);
      }
      // A first build that failed would fail again the same way: go on with the next variant.
      if (signal.aborted || (e instanceof BuildError && e.step === 'bootstrap')) return;
    }
  }
  if (!signal.aborted) {
    const gens = await listGenerations(rootsDir, recipe.name).catch(() => []);
    console.log(`${tool} generations: ${gens.map((g) => `${g.name}${g.current ? ' (current)' : ''}`).join(', ') || 'none'}`);
  }
}

async function byHand(): Promise<void> {
  const cold = values['by-hand-cold-apt'];
  const cacheDir = cacheDirs.debootstrap;
  const dbs = await debCount(path.join(cacheDir, 'debootstrap'));
  const apt = await debCount(path.join(cacheDir, 'apt'));
  const cache = dbs > 0 ? 'warm' : 'empty';
  const note = `debootstrap --cache-dir ${path.join(cacheDir, 'debootstrap')} (${dbs} .debs, the Sidereal debootstrap builds' cache); `
    + (cold ? 'apt downloads from the mirror, then apt-get clean' : `apt archive: bind of ${path.join(cacheDir, 'apt')} (${apt} .debs, same cache)`);
  const variant = `by hand (SIDUS), debootstrap (${cache} cache${cold ? ', apt from mirror' : ''})`;
  console.log(`== ${variant}\n  ${note}`);
  if (cache === 'empty') console.log('  note: the debootstrap cache is EMPTY (no debootstrap build ran before, no --cache-dir): this is a cold build');
  try {
    const r = await buildByHand({
      recipe, rootDir: path.join(work, 'by-hand', 'root'), debootstrapCacheDir: path.join(cacheDir, 'debootstrap'),
      ...(cold ? {} : { aptCacheDir: path.join(cacheDir, 'apt') }),
      installDir: repo, logger, signal,
      onStep: (s) => process.stderr.write(`  [by hand] ${s}\n`),
    });
    const boot = r.steps.find((s) => s.step === 'debootstrap')?.seconds ?? null;
    console.log(`${variant}: ${r.seconds.toFixed(1)} s (debootstrap ${boot} s), tree ${mib(r.sizes.treeBytes)}, initrd ${mib(r.sizes.initrdBytes)}, `
      + `kver ${r.kver}; lsinitrd: overlay.ko ${r.initrdHas.overlay ? 'yes' : 'NO'}, sidereal-mount.sh ${r.initrdHas.hook ? 'yes' : 'NO'}`);
    console.log(`  steps: ${r.steps.map((s) => `${s.step} ${s.seconds} s`).join('; ')}`);
    rows.push({
      variant, tool: 'debootstrap', build: 'by-hand', cache, ok: r.initrdHas.overlay && r.initrdHas.hook, seconds: round1(r.seconds),
      treeMiB: round1(r.sizes.treeBytes / MiB), initrdMiB: round1(r.sizes.initrdBytes / MiB), bootstrapSeconds: boot,
      kver: r.kver, lsinitrd: r.initrdHas, steps: r.steps, commands: r.commands, note,
    });
    if (!r.initrdHas.overlay || !r.initrdHas.hook) failed = true;
  } catch (e) {
    failed = true;
    const row: Row = {
      variant, tool: 'debootstrap', build: 'by-hand', cache, ok: false, seconds: null, treeMiB: null, initrdMiB: null,
      bootstrapSeconds: null, error: (e as Error).message, note,
    };
    const cmd = runErrorOf(e);
    if (cmd) row.failedCommand = cmd;
    rows.push(row);
    console.error(`${variant}: FAILED: ${(e as Error).message}`);
    if (cmd) for (const l of cmd.output) console.error(`    ${l}`);
  }
}

/** Unmount what is left (there should be nothing), then remove the work dir and temporary caches. True if something is wrong. */
async function cleanup(): Promise<boolean> {
  let bad = false;
  const dirs = [work, ...(values['cache-dir'] ? [] : [cacheDirs.debootstrap]), ...(values['mmdebstrap-cache-dir'] ? [] : [cacheDirs.mmdebstrap])];
  let left = await mountsUnder(work).catch(() => []);
  if (left.length > 0) {
    console.error(`root-build: still mounted after the builds: ${left.map((m) => m.mountPoint).join(', ')}: unmounting`);
    bad = true;
    await unmountAll(work, { logger }).catch((e: unknown) => console.error(`root-build: ${String(e)}`));
    left = await mountsUnder(work).catch(() => []);
  }
  if (left.length > 0) {
    // Never rm -r through a mount (a bind of a cache, a devpts).
    console.error(`root-build: STILL MOUNTED, ${work} not removed: ${left.map((m) => m.mountPoint).join(', ')}`);
    return true;
  }
  console.log(`mounts under ${work}: none`);
  if (values.keep) {
    console.log(`kept ${work}`);
  } else {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
  return bad;
}

function printTable(): void {
  const head = ['variant', 'seconds', 'tree MiB', 'initrd MiB', 'bootstrap s'];
  const body = rows.map((r) => [
    r.ok || r.seconds !== null ? r.variant : `${r.variant}: ${r.error?.includes('aborted') ? 'INTERRUPTED' : 'FAILED'}`,
    fmt(r.seconds), fmt(r.treeMiB), fmt(r.initrdMiB), fmt(r.bootstrapSeconds),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  console.log('');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
  const c = comparison();
  if (c.comparison.length > 0) {
    console.log('');
    for (const s of c.comparison) console.log(s);
  }
}

/** mmdebstrap vs debootstrap, and Sidereal vs by hand, in words. */
function comparison(): { comparison: string[] } {
  const out: string[] = [];
  const get = (tool: Tool, build: Row['build']) => rows.find((r) => r.tool === tool && r.build === build && r.seconds !== null);
  for (const build of ['first', 'rebuild'] as const) {
    const d = get('debootstrap', build);
    const m = get('mmdebstrap', build);
    if (!d || !m) continue;
    out.push(`${build}: mmdebstrap ${m.seconds} s vs debootstrap ${d.seconds} s (${pct(m.seconds!, d.seconds!)}); `
      + `bootstrap step alone: ${m.bootstrapSeconds} s vs ${d.bootstrapSeconds} s (${pct(m.bootstrapSeconds!, d.bootstrapSeconds!)})`);
  }
  const h = rows.find((r) => r.build === 'by-hand' && r.seconds !== null);
  const d = get('debootstrap', 'rebuild') ?? get('debootstrap', 'first');
  if (h && d) out.push(`by hand ${h.seconds} s vs Sidereal debootstrap ${d.build} ${d.seconds} s (Sidereal ${pct(d.seconds!, h.seconds!)} vs by hand)`);
  return { comparison: out };
}

function pct(a: number, b: number): string {
  const p = ((a - b) / b) * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(0)}%`;
}

function fmt(x: number | null): string {
  return x === null ? '-' : x.toFixed(1);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function stepDurations(starts: Array<{ step: string; at: number }>): Array<{ step: string; seconds: number }> {
  const out: Array<{ step: string; seconds: number }> = [];
  for (let i = 0; i + 1 < starts.length; i++) out.push({ step: starts[i]!.step, seconds: round1((starts[i + 1]!.at - starts[i]!.at) / 1000) });
  return out;
}

/** The RunError under a BuildError (or itself): its argv, exit code and last output lines. */
function runErrorOf(e: unknown): Row['failedCommand'] | undefined {
  let x: unknown = e;
  for (let i = 0; i < 5 && x; i++) {
    if (x instanceof RunError) {
      const text = (x.stderr.trim() || x.stdout.trim()).split('\n');
      return { argv: [...x.argv], exitCode: x.exitCode ?? null, output: text.slice(-25) };
    }
    x = (x as { cause?: unknown }).cause;
  }
  return undefined;
}

async function debCount(dir: string): Promise<number> {
  const walk = async (d: string, depth: number): Promise<number> => {
    const ents = await readdir(d, { withFileTypes: true }).catch(() => []);
    let n = 0;
    for (const e of ents) {
      if (e.isFile() && e.name.endsWith('.deb')) n++;
      else if (e.isDirectory() && depth < 2) n += await walk(path.join(d, e.name), depth + 1);
    }
    return n;
  };
  return walk(dir, 0);
}
