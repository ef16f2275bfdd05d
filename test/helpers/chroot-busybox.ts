/**
 * A tiny chroot for the chroot tests: busybox-static and a few applet links,
 * in a temp dir under /tmp, made in milliseconds (no debootstrap).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { recoverLeftovers } from '../../server/roots/chroot.js';
import { mountsUnder } from '../../server/roots/mounts.js';
import { run } from '../../server/run.js';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

export const APPLETS = ['sh', 'cat', 'ls', 'mount', 'grep', 'true', 'false', 'sleep', 'echo', 'uname', 'test', 'readlink', 'setsid'];

export const quiet = pino({ level: 'silent' });

/**
 * Root tests run as root with busybox present; elsewhere they are skipped,
 * except under CI, where a skip would hide a failure: there this throws.
 */
export function chrootTestsRunnable(): boolean {
  const ok = process.getuid?.() === 0 && BUSYBOX !== undefined;
  if (!ok && process.env.CI) throw new Error('CI must run the chroot tests: needs root and busybox-static');
  return ok;
}

export interface BusyboxRoot {
  /** The temp dir (under /tmp) holding the root: what recoverLeftovers is given. */
  base: string;
  /** The root itself: BASE/root. */
  root: string;
}

/**
 * BASE/root with bin/busybox and applet links (bin/sh, bin/cat, ...),
 * usr/sbin, proc, sys, dev, tmp. `devNodes`: a /dev as debootstrap leaves it
 * (null, zero, tty, ptmx...); without, /dev is empty.
 */
export async function makeBusyboxRoot(opts: { devNodes?: boolean; name?: string } = {}): Promise<BusyboxRoot> {
  if (!BUSYBOX) throw new Error('busybox-static is not installed');
  const base = await mkdtemp(path.join(tmpdir(), 'sidereal-chroot-'));
  const root = path.join(base, opts.name ?? 'root');
  for (const d of ['bin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root']) {
    await mkdir(path.join(root, d), { recursive: true });
  }
  await copyFile(BUSYBOX, path.join(root, 'bin', 'busybox'));
  for (const a of APPLETS) await symlink('busybox', path.join(root, 'bin', a));
  if (opts.devNodes) {
    const nodes: Array<[string, string, string]> = [['null', '1', '3'], ['zero', '1', '5'], ['tty', '5', '0'], ['ptmx', '5', '2'], ['urandom', '1', '9']];
    for (const [name, major, minor] of nodes) {
      await run(['mknod', '-m', '0666', path.join(root, 'dev', name), 'c', major, minor], { logger: quiet });
    }
  }
  return { base, root };
}

/**
 * Remove a test base dir. Never with anything mounted under it (a recursive
 * rm would walk into proc/sys/devpts): recover first, then refuse if a mount
 * is still there.
 */
export async function removeBusyboxBase(base: string): Promise<void> {
  if (!base.startsWith(path.join(tmpdir(), 'sidereal-chroot-'))) throw new Error(`not a test dir: ${base}`);
  if (!existsSync(base)) return;
  await recoverLeftovers(base, { logger: quiet });
  const left = await mountsUnder(base);
  if (left.length > 0) throw new Error(`not removing ${base}: still mounted ${left.map((m) => m.mountPoint).join(', ')}`);
  await rm(base, { recursive: true, force: true });
}
