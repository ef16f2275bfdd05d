/**
 * Running commands inside a root (the SIDUS `sidus` alias, done right):
 * proc, sys and a private devpts mounted only for the duration, service
 * start-up blocked by policy-rc.d, and everything undone afterwards, also
 * when the command fails, throws or is aborted. `recoverLeftovers` undoes
 * what a crashed process (kill -9) left behind; the daemon calls it at start.
 *
 * /dev: a debootstrapped root has the minimal device nodes in /dev, so only
 * /dev/pts is mounted. A root without them (no character device at
 * dev/null) gets a private 1 MiB tmpfs on /dev with null, zero, full,
 * random, urandom, tty, ptmx -> pts/ptmx and the fd links, for the duration:
 * never a bind of the host's /dev (it would expose the host's disks, and an
 * rbind is how a chroot's unmount ends up unmounting the host's /dev/pts).
 *
 * One session per root at a time: a root with proc, sys, dev or dev/pts
 * already mounted is refused (another session, or leftovers of a crash that
 * recoverLeftovers clears). Mounts that were under the root before (an
 * admin's own) are left alone.
 */
import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { run, type RunResult, type RunStream } from '../run.js';
import {
  canonicalDir, isStrictlyUnder, mountDevpts, mountDevTmpfs, mountProc, mountSys, mountsUnder, unmountAll,
  type MountEntry,
} from './mounts.js';

export type RootArch = 'amd64' | 'i386';

/** What withChroot installs; recognised (by content) when removing it, here or after a crash. */
export const POLICY_RC_D = '#!/bin/sh\n# Installed by sidereal for a chroot session (removed after it): no service starts inside a root.\nexit 101\n';

/** PATH inside the root. */
const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ChrootContext {
  /** The canonical root directory. */
  rootDir: string;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface WithChrootOptions {
  logger?: Logger;
  signal?: AbortSignal;
}

/** Roots with a session open in this process. */
const active = new Set<string>();

/**
 * Mount proc, sys and dev/pts (and a tmpfs /dev when the root has no device
 * nodes), install policy-rc.d unless one is there, run `fn`, then always:
 * stop any process still running inside the root, remove policy-rc.d if it
 * was ours, unmount (deepest first, lazily if busy) and verify nothing of
 * ours is left mounted. A cleanup failure is thrown (with fn's error as cause).
 */
export async function withChroot<T>(rootDir: string, fn: (ctx: ChrootContext) => Promise<T>, opts: WithChrootOptions = {}): Promise<T> {
  const { logger, signal } = opts;
  const root = await canonicalDir(rootDir);
  if (!(await lstat(root)).isDirectory()) throw new Error(`not a directory: ${root}`);
  signal?.throwIfAborted();
  if (active.has(root)) throw new Error(`a chroot session is already open on ${root}`);

  const before = await mountsUnder(root);
  const busy = before.filter((m) => ['proc', 'sys', 'dev', 'dev/pts'].some((rel) => m.mountPoint === path.join(root, rel)));
  if (busy.length > 0) {
    throw new Error(
      `${root} already has ${busy.map((m) => m.mountPoint).join(', ')} mounted: another session is open on it, or a crashed one left them (recoverLeftovers)`,
    );
  }
  const keepIds = new Set(before.map((m) => m.id));
  const keep = (m: MountEntry) => keepIds.has(m.id);

  active.add(root);
  const created: string[] = [];
  let policyInstalled = false;
  const onAbort = () => { void killChrootProcesses(root, { logger }); };
  signal?.addEventListener('abort', onAbort, { once: true });
  let result: T | undefined;
  let failure: unknown;
  let failed = false;
  try {
    await safeDir(root, 'proc', created);
    await safeDir(root, 'sys', created);
    await safeDir(root, 'dev', created);
    await mountProc(root, { logger });
    await mountSys(root, { logger });
    if (!(await isCharDevice(path.join(root, 'dev', 'null')))) {
      await mountDevTmpfs(root, { logger });
      await populateDev(root, logger);
    }
    await safeDir(root, 'dev/pts', created);
    await mountDevpts(root, { logger });
    policyInstalled = await installPolicyRcD(root, created);
    signal?.throwIfAborted();
    result = await fn({ rootDir: root, signal, logger });
  } catch (err) {
    failed = true;
    failure = err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }

  let cleanupError: unknown;
  try {
    const killed = await killChrootProcesses(root, { logger });
    if (killed.length > 0) logger?.warn({ rootDir: root, pids: killed }, 'processes were left running inside the root: stopped');
    if (policyInstalled) await removePolicyRcD(root, logger);
    await unmountAll(root, { logger, keep });
    const left = (await mountsUnder(root)).filter((m) => !keep(m));
    if (left.length > 0) throw new Error(`still mounted under ${root}: ${left.map((m) => m.mountPoint).join(', ')}`);
    for (const dir of created.reverse()) await rmdir(dir).catch(() => undefined); // only if still empty
  } catch (err) {
    cleanupError = err;
    logger?.error({ rootDir: root, err: String(err) }, 'chroot cleanup failed');
  } finally {
    active.delete(root);
  }

  if (cleanupError !== undefined) {
    throw new Error(`chroot cleanup of ${root} failed: ${String((cleanupError as Error)?.message ?? cleanupError)}`, {
      cause: failed ? failure : cleanupError,
    });
  }
  if (failed) throw failure;
  return result as T;
}

export interface ExecInChrootOptions {
  arch?: RootArch;
  /** Extra environment (over the clean one: PATH, HOME, DEBIAN_FRONTEND, LC_ALL...). */
  env?: Record<string, string>;
  signal?: AbortSignal;
  onLine?: (line: string, stream: RunStream) => void;
  logger?: Logger;
  timeoutMs?: number;
  /** Default false: a non-zero exit is returned, not thrown. */
  reject?: boolean;
  /** 'inherit' for an interactive shell. */
  stdio?: 'pipe' | 'inherit';
  input?: string | Uint8Array;
}

/** The clean environment commands see inside a root (nothing of the daemon's own leaks in). */
export function chrootEnv(extra: Record<string, string> = {}, interactive = false): Record<string, string> {
  return {
    PATH: CHROOT_PATH,
    HOME: '/root',
    USER: 'root',
    LOGNAME: 'root',
    SHELL: '/bin/sh',
    // The host's LANG may name a locale the root lacks (perl then warns on every call); C.UTF-8 is in libc-bin.
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    DEBIAN_FRONTEND: 'noninteractive',
    DEBCONF_NONINTERACTIVE_SEEN: 'true',
    ...(interactive && process.env.TERM ? { TERM: process.env.TERM } : {}),
    ...extra,
  };
}

/**
 * `[setarch i686] chroot ROOT ARGV...` with the clean environment of
 * chrootEnv (passed as chroot's environment, which it hands on: no `env`
 * binary or argument parsing inside the root). setarch runs on the host
 * (always present there; the personality survives chroot and exec), so
 * `uname -m` says i686 in an i386 root. Does not mount anything: use it
 * inside withChroot.
 */
export async function execInChroot(rootDir: string, argv: readonly string[], opts: ExecInChrootOptions = {}): Promise<RunResult> {
  if (argv.length === 0 || !argv[0]) throw new Error('execInChroot: empty command');
  const root = await canonicalDir(rootDir);
  const prefix = opts.arch === 'i386' ? ['setarch', 'i686'] : [];
  return run([...prefix, 'chroot', root, ...argv], {
    logger: opts.logger,
    env: chrootEnv(opts.env, opts.stdio === 'inherit'),
    extendEnv: false,
    signal: opts.signal,
    onLine: opts.onLine,
    timeoutMs: opts.timeoutMs,
    reject: opts.reject ?? false,
    stdio: opts.stdio,
    input: opts.input,
  });
}

export type RootExecOptions = Omit<ExecInChrootOptions, 'reject'>;

/**
 * `sidereal root exec NAME -- CMD...`: withChroot + execInChroot. Returns the
 * command's exit code; rejects (after cleaning up) when aborted or when the
 * command cannot be started.
 */
export async function rootExec(rootDir: string, argv: readonly string[], opts: RootExecOptions = {}): Promise<number> {
  return withChroot(
    rootDir,
    async (ctx) => (await execInChroot(ctx.rootDir, argv, { ...opts, signal: ctx.signal, reject: false })).exitCode,
    { logger: opts.logger, signal: opts.signal },
  );
}

/**
 * `sidereal root shell NAME`: an interactive login shell (bash if the root has
 * it, else sh) on this terminal. While it runs this process ignores SIGINT
 * and SIGQUIT (as system(3) does), so a Ctrl-C reaches the shell, not us, and
 * the cleanup still runs.
 */
export async function rootShell(rootDir: string, opts: Omit<RootExecOptions, 'stdio' | 'onLine' | 'input'> = {}): Promise<number> {
  const root = await canonicalDir(rootDir);
  const shell = (await exists(path.join(root, 'bin', 'bash'))) ? ['/bin/bash', '-l'] : ['/bin/sh', '-l'];
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    return await rootExec(root, shell, { ...opts, stdio: 'inherit', env: { SHELL: shell[0]!, ...opts.env } });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  }
}

export interface RecoveryReport {
  /** Mount points unmounted. */
  unmounted: string[];
  /** PIDs of processes that were still running inside a root, stopped. */
  killed: number[];
  /** policy-rc.d files of ours removed. */
  policyRemoved: string[];
}

/**
 * At daemon start: undo what crashed sessions left under `baseDir` (where the
 * roots live): stop processes still running inside a root there, remove our
 * policy-rc.d from roots that have a leftover proc mount, unmount everything
 * strictly under `baseDir` (never `baseDir` itself) and verify nothing is left.
 */
export async function recoverLeftovers(baseDir: string, opts: { logger?: Logger } = {}): Promise<RecoveryReport> {
  const { logger } = opts;
  const base = await canonicalDir(baseDir);
  const killed = await killChrootProcesses(base, { logger, onlyUnder: true });
  const mounts = await mountsUnder(base);
  const roots = new Set(
    mounts.filter((m) => m.fsType === 'proc' && path.basename(m.mountPoint) === 'proc').map((m) => path.dirname(m.mountPoint)),
  );
  const policyRemoved: string[] = [];
  for (const root of roots) {
    if (!isStrictlyUnder(root, base)) continue;
    if (await removePolicyRcD(root, logger)) policyRemoved.push(path.join(root, 'usr/sbin/policy-rc.d'));
  }
  const unmounted = await unmountAll(base, { logger });
  if (unmounted.length > 0 || killed.length > 0) {
    logger?.warn({ baseDir: base, unmounted, killed, policyRemoved }, 'recovered leftovers of interrupted chroot sessions');
  }
  return { unmounted, killed, policyRemoved };
}

/**
 * Stop every process whose root directory (/proc/PID/root) is `dir` or under
 * it (`onlyUnder`: strictly under it, for a base dir holding roots):
 * SIGTERM, then SIGKILL after graceMs, bounded. Returns the PIDs signalled.
 */
export async function killChrootProcesses(
  dir: string,
  opts: { logger?: Logger; graceMs?: number; onlyUnder?: boolean } = {},
): Promise<number[]> {
  const base = await canonicalDir(dir);
  const matches = (r: string) => isStrictlyUnder(r, base) || (!opts.onlyUnder && r === base);
  const pids = (await processesRootedIn(matches)).filter((pid) => pid !== process.pid);
  if (pids.length === 0) return [];
  opts.logger?.warn({ dir: base, pids }, 'stopping processes running inside the root');
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + (opts.graceMs ?? 2000);
  let alive = pids;
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter((pid) => signal(pid, 0) && !isZombie(pid));
  }
  for (const pid of alive) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (alive.length > 0 && Date.now() < killDeadline) {
    await sleep(50);
    alive = alive.filter((pid) => signal(pid, 0) && !isZombie(pid));
  }
  return pids;
}

async function processesRootedIn(matches: (root: string) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let r: string;
    try {
      r = await readlink(`/proc/${name}/root`);
    } catch {
      continue; // gone, or a kernel thread
    }
    if (matches(r)) out.push(Number(name));
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** A zombie is dead already, only waiting for its parent to reap it. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function isCharDevice(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * Make sure ROOT/REL is a real directory inside the root, creating what is
 * missing (recorded in `created`). A symlink on the way is refused: an
 * absolute link such as proc -> /proc would make mount or writeFile act on the host.
 */
async function safeDir(root: string, rel: string, created: string[]): Promise<string> {
  let cur = root;
  for (const part of rel.split('/').filter(Boolean)) {
    cur = path.join(cur, part);
    let st;
    try {
      st = await lstat(cur);
    } catch {
      await mkdir(cur, { mode: 0o755 });
      created.push(cur);
      continue;
    }
    if (st.isSymbolicLink()) throw new Error(`refusing ${cur}: a symbolic link inside the root`);
    if (!st.isDirectory()) throw new Error(`refusing ${cur}: not a directory`);
  }
  return cur;
}

/** The minimal device nodes (as debootstrap makes them) on the tmpfs /dev. */
async function populateDev(root: string, logger?: Logger): Promise<void> {
  const dev = path.join(root, 'dev');
  const nodes: Array<[string, number, number]> = [
    ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
  ];
  for (const [name, major, minor] of nodes) {
    await run(['mknod', '-m', '0666', path.join(dev, name), 'c', String(major), String(minor)], { logger });
  }
  const links: Array<[string, string]> = [
    ['ptmx', 'pts/ptmx'], ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2'],
  ];
  for (const [name, target] of links) await symlink(target, path.join(dev, name));
  await mkdir(path.join(dev, 'shm'), { mode: 0o1777 });
  await chmod(path.join(dev, 'shm'), 0o1777);
}

/** Install usr/sbin/policy-rc.d (exit 101) unless something is there. True when installed. */
async function installPolicyRcD(root: string, created: string[]): Promise<boolean> {
  const dir = await safeDir(root, 'usr/sbin', created);
  const file = path.join(dir, 'policy-rc.d');
  if (await exists(file)) return false;
  await writeFile(file, POLICY_RC_D, { mode: 0o755, flag: 'wx' });
  await chmod(file, 0o755);
  return true;
}

/** Remove ROOT/usr/sbin/policy-rc.d if it is ours (same content). True when removed. */
async function removePolicyRcD(root: string, logger?: Logger): Promise<boolean> {
  const file = path.join(root, 'usr', 'sbin', 'policy-rc.d');
  try {
    const st = await lstat(file);
    if (!st.isFile()) return false;
    if ((await readFile(file, 'utf8')) !== POLICY_RC_D) {
      logger?.warn({ file }, 'policy-rc.d was changed during the session: left in place');
      return false;
    }
    await unlink(file);
    return true;
  } catch {
    return false;
  }
}
