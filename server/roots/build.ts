/**
 * Build a root from its recipe into a new generation, and publish it: the runner of
 * `planBuild`'s steps (plan.ts says what each action means; this file only executes them).
 *
 *   <rootsDir>/<name>/gen-<ts>/      the new tree (generations.ts)
 *   <cacheDir>/{debootstrap,apt}/    .debs kept across builds (bind-mounted on the chroot's
 *                                    /var/cache/apt/archives for apt, --cache-dir for debootstrap)
 *   <tftpRoot>/vmlinuz-<kver>@<name>, initrd.img-<kver>@<name>   published 0644
 *
 * Order: the steps before the first chroot command (the bootstrap) run on the host; from there to
 * the last chroot command, ONE withChroot session (proc, sys, dev/pts mounted once, policy-rc.d);
 * the rest (cleanup, publish) after it is closed, so `current` only moves once nothing is mounted.
 * On failure or abort the generation is removed (after unmounting) and `current` is untouched;
 * the error (BuildError) names the failing step.
 */
import { existsSync } from 'node:fs';
import { chmod, cp, lstat, mkdir, readdir, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { run, type RunStream } from '../run.js';
import { installDir } from '../install-dir.js';
import { execInChroot, withChroot, type ChrootContext } from './chroot.js';
import { bindMount, mountsUnder, unmountAll } from './mounts.js';
import {
  KVER, pickKernelVersion, planBuild, substituteKver,
  type Action, type Bind, type BuildStep, type PublishAction, type StepId,
} from './plan.js';
import type { Recipe } from './recipe.js';
import { buildingMarker, createGeneration, prune, removeGeneration } from './generations.js';
import { activateGeneration, writeGenerationInfo, type Register } from './publish.js';
import { inTree } from './tree-path.js';
import { BUILD_TAG, ownerToken } from './owner.js';

export type { PublishedRoot } from './publish.js';

export interface BuildOptions {
  recipe: Recipe;
  rootsDir: string;
  tftpRoot: string;
  cacheDir: string;
  /** An HTTP proxy for the package downloads (http_proxy of the bootstrap tool and of apt in the root). */
  proxy?: string;
  logger?: Logger;
  signal?: AbortSignal;
  /** Called when a step starts (fraction: the weight done before it, 0..1) and once at the end with 1. */
  onProgress?: (step: BuildStep, fraction: number) => void;
  /** Every line the commands print (the build log). */
  onLine?: (line: string, step: StepId, stream: RunStream) => void;
  tool?: 'debootstrap' | 'mmdebstrap';
  keyring?: string;
  /** Where relative `copy-in` sources are (default: the Sidereal install directory). */
  installDir?: string;
  /** Register the root in the inventory (Roots.put) before `current` is switched. */
  register?: Register;
  /** Called once the generation directory exists (a job records it, to clean up after a crash). */
  onGeneration?: (generation: string) => void;
  /** Kept in the generation's info file. */
  buildId?: number;
  /** A generation some machine may be running from: never pruned (the NFS export manager keeps it exported). */
  inUse?: (generationDir: string) => boolean;
}

export interface BuildResult {
  /** gen-<timestamp> */
  generation: string;
  generationDir: string;
  /** Published file names in the TFTP root. */
  kernel: string;
  initrd: string;
  kver: string;
  seconds: number;
  /** Generations removed by keepGenerations. */
  pruned: string[];
  sizes: { treeBytes: number; initrdBytes: number };
}

export class BuildError extends Error {
  constructor(readonly step: StepId, readonly title: string, cause: unknown) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(`root build failed at step ${step} (${title}): ${msg}`, { cause });
    this.name = 'BuildError';
  }
}

/** Actions that need the chroot session (proc, sys, dev/pts mounted). */
function needsChroot(a: Action): boolean {
  return (a.kind === 'exec' && a.inChroot) || a.kind === 'initrd' || a.kind === 'check-initrd';
}

export async function buildRoot(opts: BuildOptions): Promise<BuildResult> {
  const started = process.hrtime.bigint();
  const { recipe, logger, signal } = opts;
  signal?.throwIfAborted();
  const rootsDir = path.resolve(opts.rootsDir);
  const cacheDir = path.resolve(opts.cacheDir);
  const tftpRoot = path.resolve(opts.tftpRoot);
  const tool = opts.tool ?? defaultBootstrapTool();
  // The plan's caches: debootstrap's --cache-dir, mmdebstrap's sync dir, apt's bind source.
  for (const d of ['debootstrap', 'mmdebstrap', 'apt']) await mkdir(path.join(cacheDir, d), { recursive: true, mode: 0o755 });
  await mkdir(tftpRoot, { recursive: true });

  const gen = await createGeneration(rootsDir, recipe.name);
  const marker = buildingMarker(gen.dir);
  await writeFile(marker, `${ownerToken()}\n`);
  opts.onGeneration?.(gen.name);
  const steps = planBuild(recipe, {
    generationDir: gen.dir, cacheDir, tool,
    ...(opts.keyring ? { keyring: opts.keyring } : {}),
  });
  const total = steps.reduce((s, x) => s + x.weight, 0);
  const chrootIdx = steps.map((s, i) => (s.run.some(needsChroot) ? i : -1)).filter((i) => i >= 0);
  const first = chrootIdx[0] ?? steps.length;
  const last = chrootIdx[chrootIdx.length - 1] ?? -1;

  const st: RunState = {
    opts, treeDir: gen.dir, installDir: opts.installDir ?? installDir(), kver: undefined, done: 0, total,
    published: undefined, current: steps[0]!,
  };
  log(logger, 'info', { root: recipe.name, generation: gen.name, steps: steps.length }, 'root build started');

  try {
    for (let i = 0; i < first && i < steps.length; i++) await runStep(st, steps[i]!, undefined);
    if (first <= last) {
      await withChroot(gen.dir, async (ctx) => {
        for (let i = first; i <= last; i++) await runStep(st, steps[i]!, ctx);
      }, { logger, signal });
    }
    for (let i = Math.max(first, last + 1); i < steps.length; i++) await runStep(st, steps[i]!, undefined);
    if (!st.published) throw new Error('the plan has no publish step');
  } catch (err) {
    await discard(gen.dir, recipe.name, rootsDir, logger);
    await rm(marker, { force: true });
    if (err instanceof BuildError) throw err;
    // withChroot's own failures (mounting, cleanup) come here: blame the step that was running.
    throw new BuildError(st.current.id, st.current.title, err);
  }
  await rm(marker, { force: true });

  const pruned = await prune(rootsDir, recipe.name, recipe.keepGenerations, opts.inUse).catch((e: unknown) => {
    log(logger, 'warn', { err: String(e) }, 'pruning old generations failed');
    return [] as string[];
  });
  const p = st.published;
  const sizes = {
    treeBytes: await treeBytes(gen.dir, logger),
    initrdBytes: (await stat(path.join(tftpRoot, p.initrd))).size,
  };
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  opts.onProgress?.(steps[steps.length - 1]!, 1);
  log(logger, 'info', { root: recipe.name, generation: gen.name, kver: st.kver, seconds, ...sizes, pruned }, 'root build done');
  return { generation: gen.name, generationDir: gen.dir, kernel: p.kernel, initrd: p.initrd, kver: st.kver!, seconds, pruned, sizes };
}

interface RunState {
  opts: BuildOptions;
  treeDir: string;
  installDir: string;
  kver: string | undefined;
  done: number;
  total: number;
  published: { kernel: string; initrd: string } | undefined;
  current: BuildStep;
}

async function runStep(st: RunState, planned: BuildStep, ctx: ChrootContext | undefined): Promise<void> {
  const { opts } = st;
  st.current = planned;
  opts.onProgress?.(planned, st.total > 0 ? st.done / st.total : 0);
  const t0 = Date.now();
  try {
    let step = planned;
    if (JSON.stringify(step).includes(KVER)) step = substituteKver(step, await kernelVersion(st));
    for (const action of step.run) {
      opts.signal?.throwIfAborted();
      if (needsChroot(action) && !ctx) throw new Error(`${action.kind} outside the chroot session`);
      await runAction(st, step.id, action, ctx);
    }
  } catch (err) {
    throw new BuildError(planned.id, planned.title, err);
  }
  st.done += planned.weight;
  log(opts.logger, 'info', { step: planned.id, ms: Date.now() - t0 }, `step ${planned.id} done`);
}

async function kernelVersion(st: RunState): Promise<string> {
  if (!st.kver) {
    const dirs = await readdir(path.join(st.treeDir, 'lib', 'modules')).catch(() => [] as string[]);
    st.kver = pickKernelVersion(dirs);
  }
  return st.kver;
}

async function runAction(st: RunState, step: StepId, a: Action, ctx: ChrootContext | undefined): Promise<void> {
  const { opts, treeDir } = st;
  const { logger, signal } = opts;
  const onLine = (line: string, stream: RunStream) => opts.onLine?.(line, step, stream);
  // Every process of the build carries the tag, so a daemon restarted after a crash finds and stops them.
  const tag: Record<string, string> = { [BUILD_TAG]: treeDir, ...(opts.proxy ? { http_proxy: opts.proxy } : {}) };
  switch (a.kind) {
    case 'exec': {
      if (!a.inChroot) {
        await run(a.argv, { logger, signal, onLine, reject: true, env: tag });
        return;
      }
      const mounted: string[] = [];
      try {
        for (const b of a.binds ?? []) mounted.push(await bindInto(ctx!.rootDir, b, logger));
        await execInChroot(ctx!.rootDir, a.argv, { arch: a.arch, env: { ...a.env, ...tag }, signal, logger, onLine, reject: true });
      } finally {
        // Deepest first; withChroot's unmountAll would catch any left, but the cache is ours to release.
        for (const m of mounted.reverse()) await run(['umount', m], { logger, reject: false });
      }
      return;
    }
    case 'initrd':
      await execInChroot(ctx!.rootDir, a.argv, { arch: a.arch, env: { ...a.env, ...tag }, signal, logger, onLine, reject: true });
      return;
    case 'check-initrd': {
      const r = await execInChroot(ctx!.rootDir, a.argv, { arch: a.arch, env: { ...a.env, ...tag }, signal, logger, reject: true });
      const missing = a.mustList.filter((name) => !r.stdout.includes(name));
      if (missing.length > 0) throw new Error(`${a.argv.join(' ')} does not list ${missing.join(', ')}`);
      return;
    }
    case 'write-file': {
      const file = await inTree(treeDir, a.path, true);
      await unlinkIfLink(file);
      await writeFile(file, a.content, { mode: a.mode });
      await chmod(file, a.mode);
      return;
    }
    case 'symlink': {
      const file = await inTree(treeDir, a.path, true);
      await rm(file, { force: true });
      await symlink(a.target, file);
      return;
    }
    case 'remove': {
      const file = await inTree(treeDir, a.path, false).catch(() => undefined);
      if (file) await rm(file, { force: true });
      return;
    }
    case 'copy-in': {
      const from = path.resolve(st.installDir, a.from);
      const to = await inTree(treeDir, a.to, true);
      await rm(to, { recursive: true, force: true });
      await cp(from, to, { recursive: true, dereference: false, preserveTimestamps: true });
      return;
    }
    case 'publish':
      st.published = await publish(st, a);
      return;
  }
}

/** Record what the generation publishes beside it, then make it the live one (publish.ts). */
async function publish(st: RunState, a: PublishAction): Promise<{ kernel: string; initrd: string }> {
  const { opts, treeDir } = st;
  const rootsDir = path.dirname(path.dirname(treeDir));
  const generation = path.basename(treeDir);
  await writeGenerationInfo(rootsDir, generation, {
    root: a.root, arch: a.arch, kver: st.kver ?? '', kernelArgs: a.kernelArgs, overlay: a.overlay, files: a.files,
    builtAt: Date.now(), ...(opts.buildId !== undefined ? { buildId: opts.buildId } : {}),
  });
  const p = await activateGeneration({ rootsDir, tftpRoot: path.resolve(opts.tftpRoot), name: a.root, generation, register: opts.register });
  return { kernel: p.kernel, initrd: p.initrd };
}

/** Bind-mount the host dir `b.host` (created if missing) on `b.root` inside the root; returns the mount point. */
async function bindInto(root: string, b: Bind, logger?: Logger): Promise<string> {
  await mkdir(b.host, { recursive: true, mode: 0o755 });
  const target = await inTree(root, b.root, true);
  try {
    const s = await lstat(target);
    if (!s.isDirectory()) throw new Error(`cannot bind ${b.host} on ${b.root}: not a directory in the root`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(target, { mode: 0o755 });
  }
  await bindMount(b.host, target, { logger });
  return target;
}

async function unlinkIfLink(file: string): Promise<void> {
  try {
    if ((await lstat(file)).isSymbolicLink()) await unlink(file);
  } catch { /* absent */ }
}

/** Remove a failed generation: unmount whatever is left under it first (withChroot normally did). */
async function discard(genDir: string, name: string, rootsDir: string, logger?: Logger): Promise<void> {
  try {
    if ((await mountsUnder(genDir)).length > 0) await unmountAll(genDir, { logger });
    await removeGeneration(rootsDir, name, path.basename(genDir));
  } catch (e) {
    log(logger, 'error', { genDir, err: String(e) }, 'could not remove the failed generation');
  }
}

/** Bytes in the tree, this filesystem only (du -sbx). */
export async function treeBytes(dir: string, logger?: Logger): Promise<number> {
  const r = await run(['du', '-sbx', dir], { logger, reject: false });
  return Number.parseInt(r.stdout.split(/\s/)[0] ?? '', 10) || 0;
}

/**
 * mmdebstrap when installed: measured faster here (bench/root-build.ts: first build 102 s against
 * 128 s, rebuild 104 s against 117 s; the bootstrap step alone 13-16 s against 28-35 s).
 */
export function defaultBootstrapTool(): 'debootstrap' | 'mmdebstrap' {
  return ['/usr/bin/mmdebstrap', '/usr/sbin/mmdebstrap'].some((p) => existsSync(p)) ? 'mmdebstrap' : 'debootstrap';
}

function log(logger: Logger | undefined, level: 'info' | 'warn' | 'error', obj: object, msg: string): void {
  logger?.[level](obj, msg);
}
