/** Paths inside a root tree that cannot lead out of it (a root's symlinks are the root's, not the host's). */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * The host path of `p` (absolute, inside the tree), with every directory on the way checked to
 * stay inside it: a symbolic link is followed only when it resolves inside the tree (usr-merge's
 * lib -> usr/lib), never to the host. `create`: missing directories are made (0755). The last
 * component is not resolved (it may be a link to replace).
 */
export async function inTree(treeDir: string, p: string, create: boolean): Promise<string> {
  const root = await realpath(treeDir);
  const rel = path.posix.normalize(p).replace(/^\/+/, '');
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0 || parts.includes('..')) throw new Error(`${JSON.stringify(p)} is not a path inside the root`);
  const leaf = parts.pop()!;
  let cur = root;
  for (const part of parts) {
    const next = path.join(cur, part);
    let s;
    try {
      s = await lstat(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw e;
      await mkdir(next, { mode: 0o755 });
      cur = next;
      continue;
    }
    if (s.isSymbolicLink()) {
      const real = await realpath(next);
      if (real !== root && !real.startsWith(`${root}/`)) throw new Error(`refusing ${p}: ${next} leads out of the root (${real})`);
      cur = real;
    } else if (s.isDirectory()) {
      cur = next;
    } else {
      throw new Error(`refusing ${p}: ${next} is not a directory`);
    }
  }
  return path.join(cur, leaf);
}

/**
 * The host path of a regular file of the tree, for reading it from the host (publishing a
 * kernel): like inTree, and the last component too may be a symbolic link only if it resolves
 * inside the tree. Without this a root whose /boot/vmlinuz-<ver> is a link to /etc/shadow
 * would publish the host's /etc/shadow, world-readable, in the TFTP root.
 */
export async function fileInTree(treeDir: string, p: string): Promise<string> {
  const host = await inTree(treeDir, p, false);
  const root = await realpath(treeDir);
  const real = await realpath(host);
  if (real !== host && !real.startsWith(`${root}/`)) throw new Error(`refusing ${p}: it is a link that leads out of the root (${real})`);
  const s = await lstat(real);
  if (!s.isFile()) throw new Error(`refusing ${p}: not a regular file`);
  return real;
}
