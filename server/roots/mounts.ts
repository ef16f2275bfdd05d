/**
 * Mounts under a root directory: reading /proc/self/mountinfo, mounting the
 * pseudo-filesystems a chroot needs, and unmounting everything under a
 * directory, deepest first, verified.
 *
 * Safety: every unmount is of a path taken from mountinfo that is strictly
 * under the directory given (never the directory itself, never '/'), and is
 * re-checked (absolute, canonical, inside) right before `umount` runs.
 */
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { run } from '../run.js';

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem. */
  dev: string;
  /** Root of the mount within its filesystem (a bind of a subdirectory shows it). */
  root: string;
  /** Where it is mounted, unescaped. */
  mountPoint: string;
  mountOptions: string;
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo (octal). */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parse /proc/self/mountinfo (proc(5)):
 * `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
 * The optional fields run up to a lone "-". Malformed lines are skipped.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 3) continue;
    const id = Number(f[0]);
    const parentId = Number(f[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId)) continue;
    out.push({
      id,
      parentId,
      dev: f[2]!,
      root: unescapeMountField(f[3]!),
      mountPoint: unescapeMountField(f[4]!),
      mountOptions: f[5]!,
      optionalFields: f.slice(6, sep),
      fsType: unescapeMountField(f[sep + 1]!),
      source: unescapeMountField(f[sep + 2]!),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

export async function readMountinfo(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** True when `p` is strictly inside `dir` (both absolute and normalized). */
export function isStrictlyUnder(p: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  return p !== dir && p.startsWith(d) && d !== '/';
}

/** Canonical absolute form of a directory that must exist (symlinks resolved, as mountinfo shows paths). */
export async function canonicalDir(dir: string): Promise<string> {
  if (!path.isAbsolute(dir)) throw new Error(`not an absolute path: ${dir}`);
  const real = await realpath(dir);
  if (real === '/') throw new Error(`refusing to work on '/' (${dir})`);
  return real;
}

/**
 * Mounts strictly under `dir` (not `dir` itself: it may be the filesystem the
 * roots live on), deepest first; of mounts stacked on one point, the top one
 * (later in mountinfo) first. `entries` is for tests; `dir` must then be canonical.
 */
export async function mountsUnder(dir: string, entries?: MountEntry[]): Promise<MountEntry[]> {
  const base = entries ? path.resolve(dir) : await canonicalDir(dir);
  const all = entries ?? (await readMountinfo());
  return all
    .map((m, index) => ({ m, index }))
    .filter(({ m }) => isStrictlyUnder(m.mountPoint, base))
    .sort((a, b) => depth(b.m.mountPoint) - depth(a.m.mountPoint) || b.index - a.index)
    .map(({ m }) => m);
}

function depth(p: string): number {
  return p.split('/').filter(Boolean).length;
}

export interface UnmountOptions {
  logger?: Logger;
  /** Mounts to leave in place (e.g. ones that were there before a chroot session). */
  keep?: (m: MountEntry) => boolean;
  /** Rounds of "unmount what is left" before giving up (default 5). */
  maxRounds?: number;
}

/**
 * Unmount every mount strictly under `dir` (except `keep`), deepest first:
 * `umount PATH`, and `umount --lazy PATH` when it is busy. Repeats (bounded)
 * until mountinfo shows none left, else throws naming what is left.
 * Returns the mount points it unmounted.
 */
export async function unmountAll(dir: string, opts: UnmountOptions = {}): Promise<string[]> {
  const base = await canonicalDir(dir);
  const keep = opts.keep ?? (() => false);
  const maxRounds = opts.maxRounds ?? 5;
  const done: string[] = [];
  for (let round = 0; round < maxRounds; round++) {
    const left = (await mountsUnder(base)).filter((m) => !keep(m));
    if (left.length === 0) return done;
    for (const m of left) {
      const target = m.mountPoint;
      // Re-check right before unmounting: inside base, absolute, no '..', still canonical.
      if (!isStrictlyUnder(target, base) || path.normalize(target) !== target) {
        throw new Error(`refusing to unmount ${target}: not under ${base}`);
      }
      let canonical: string | undefined;
      try {
        canonical = await realpath(target);
      } catch {
        canonical = undefined; // its directory went away (a lazy unmount above it): umount by name still works
      }
      if (canonical !== undefined && canonical !== target) {
        throw new Error(`refusing to unmount ${target}: resolves to ${canonical}`);
      }
      const r = await run(['umount', target], { logger: opts.logger, reject: false });
      if (r.exitCode === 0) {
        done.push(target);
        continue;
      }
      if (!(await isMounted(m.id))) continue; // gone meanwhile (e.g. with its parent)
      opts.logger?.warn({ mountPoint: target, stderr: r.stderr.trim() }, 'umount failed (busy?): lazy unmount');
      const lazy = await run(['umount', '--lazy', target], { logger: opts.logger, reject: false });
      if (lazy.exitCode === 0) done.push(target);
    }
  }
  const left = (await mountsUnder(base)).filter((m) => !keep(m));
  if (left.length > 0) {
    throw new Error(`mounts left under ${base} after ${maxRounds} rounds: ${left.map((m) => m.mountPoint).join(', ')}`);
  }
  return done;
}

async function isMounted(id: number): Promise<boolean> {
  return (await readMountinfo()).some((m) => m.id === id);
}

/** The mount at exactly `mountPoint`, top of the stack, if any. */
export async function mountAt(mountPoint: string): Promise<MountEntry | undefined> {
  const all = await readMountinfo();
  return all.filter((m) => m.mountPoint === mountPoint).pop();
}

export interface MountOptions {
  logger?: Logger;
}

/** `mount --bind SRC DST` (not --rbind: no submounts come along, so unmounting it never touches the host's). */
export async function bindMount(src: string, dst: string, opts: MountOptions = {}): Promise<void> {
  await run(['mount', '--bind', src, dst], { logger: opts.logger });
}

/** A fresh procfs on DIR/proc (`mount -t proc proc DIR/proc`), nosuid,nodev,noexec as on the host. */
export async function mountProc(rootDir: string, opts: MountOptions = {}): Promise<void> {
  await run(['mount', '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', path.join(rootDir, 'proc')], { logger: opts.logger });
}

/**
 * A fresh sysfs on DIR/sys, read-only: nothing run inside a root being built
 * should write the host's kernel settings (systemd-nspawn does the same);
 * dpkg, apt and dracut only read it.
 */
export async function mountSys(rootDir: string, opts: MountOptions = {}): Promise<void> {
  await run(['mount', '-t', 'sysfs', '-o', 'ro,nosuid,nodev,noexec', 'sysfs', path.join(rootDir, 'sys')], { logger: opts.logger });
}

/**
 * A new devpts instance on DIR/dev/pts rather than a bind of the host's:
 * apt runs dpkg on a pty it opens through /dev/ptmx, and with a private
 * instance (ptmxmode=0666 so /dev/pts/ptmx is usable, gid=5 = tty as in
 * Debian's base-passwd, mode=0620 as on the host) those ptys live inside the
 * chroot, a maintainer script cannot open the host users' terminals, and
 * unmounting it can never affect the host's /dev/pts. A debootstrapped
 * root's /dev/ptmx (char 5:2) resolves to the sibling pts instance (Linux >= 4.7).
 */
export async function mountDevpts(rootDir: string, opts: MountOptions = {}): Promise<void> {
  await run(
    ['mount', '-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec', 'devpts', path.join(rootDir, 'dev', 'pts')],
    { logger: opts.logger },
  );
}

/** A small tmpfs on DIR/dev (for a root whose /dev has no device nodes). */
export async function mountDevTmpfs(rootDir: string, opts: MountOptions = {}): Promise<void> {
  await run(['mount', '-t', 'tmpfs', '-o', 'mode=0755,nosuid,size=1m', 'tmpfs', path.join(rootDir, 'dev')], { logger: opts.logger });
}
