/**
 * Generations of a root: every build makes a new tree, the nodes' NFS export follows a symlink.
 *
 *   <rootsDir>/<name>/gen-<timestamp>/   one built tree each (timestamp: UTC, sortable, unique)
 *   <rootsDir>/<name>/current            -> gen-<timestamp> (relative), the published one
 *
 * `current` is switched atomically: a new symlink under a temporary name, then rename(2) over
 * `current` (a reader sees the old or the new target, never none). `prune` never removes what
 * `current` points at, nor a generation being built (`.<gen>.building` beside it, see build.ts).
 */
import { lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { mountsUnder } from './mounts.js';

export const CURRENT = 'current';
const GEN = /^gen-(\d{8}T\d{6}(?:\d{3})?Z(?:-\d+)?)$/;

export interface Generation {
  /** gen-<timestamp> */
  name: string;
  /** Absolute path of the tree. */
  dir: string;
  /** True when `current` points at it. */
  current: boolean;
}

export function rootDir(rootsDir: string, name: string): string {
  return path.join(rootsDir, name);
}

/** gen-20261123T142700123Z: UTC, milliseconds, sorts in build order. */
export function generationName(now = new Date()): string {
  return `gen-${now.toISOString().replace(/[-:.]/g, '')}`;
}

/** Create a new, empty generation directory (a fresh name even when two builds start in the same ms). */
export async function createGeneration(rootsDir: string, name: string, now = new Date()): Promise<Generation> {
  const base = rootDir(rootsDir, name);
  await mkdir(base, { recursive: true, mode: 0o755 });
  const stem = generationName(now);
  for (let i = 0; i < 100; i++) {
    const gen = i === 0 ? stem : `${stem}-${i}`;
    const dir = path.join(base, gen);
    try {
      await mkdir(dir, { mode: 0o755 });
      return { name: gen, dir, current: false };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error(`cannot create a generation directory under ${base}`);
}

/** The generation `current` points at, if any. */
export async function currentGeneration(rootsDir: string, name: string): Promise<string | undefined> {
  try {
    const target = await readlink(path.join(rootDir(rootsDir, name), CURRENT));
    return path.basename(target);
  } catch {
    return undefined;
  }
}

/** Point `current` at `gen`, atomically (symlink to a temporary name, rename over `current`). */
export async function switchCurrent(rootsDir: string, name: string, gen: string): Promise<void> {
  if (!GEN.test(gen)) throw new Error(`not a generation name: ${gen}`);
  const base = rootDir(rootsDir, name);
  const st = await lstat(path.join(base, gen));
  if (!st.isDirectory()) throw new Error(`${path.join(base, gen)} is not a directory`);
  const tmp = path.join(base, `.${CURRENT}.${process.pid}.${Date.now()}`);
  await symlink(gen, tmp);
  try {
    await rename(tmp, path.join(base, CURRENT));
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** The generations of a root, oldest first. */
export async function listGenerations(rootsDir: string, name: string): Promise<Generation[]> {
  const base = rootDir(rootsDir, name);
  let names: string[];
  try {
    names = await readdir(base);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const cur = await currentGeneration(rootsDir, name);
  return names.filter((n) => GEN.test(n)).sort().map((n) => ({ name: n, dir: path.join(base, n), current: n === cur }));
}

/** Remove one generation's tree; refuses `current`'s target and a tree with something mounted in it. */
export async function removeGeneration(rootsDir: string, name: string, gen: string): Promise<void> {
  if (!GEN.test(gen)) throw new Error(`not a generation name: ${gen}`);
  if ((await currentGeneration(rootsDir, name)) === gen) throw new Error(`${name}/${gen} is the current generation`);
  const dir = path.join(rootDir(rootsDir, name), gen);
  let exists = true;
  try {
    await lstat(dir);
  } catch {
    exists = false;
  }
  // Its info file (publish.ts) goes first: a generation without it is never activated.
  await rm(path.join(rootDir(rootsDir, name), `${gen}.json`), { force: true });
  if (!exists) return;
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) throw new Error(`refusing to remove ${dir}: ${mounted.map((m) => m.mountPoint).join(', ')} still mounted`);
  // rm does not cross into mount points only if none exist: checked just above.
  await rm(dir, { recursive: true, force: true });
}

/**
 * Keep the newest `keep` generations (at least 1) plus `current`'s target wherever it is in the
 * list; remove the others, skipping any still being built (a `.<gen>.building` file beside it) and
 * any `inUse` says a machine may be running. Returns the names removed.
 */
export async function prune(rootsDir: string, name: string, keep: number, inUse: (dir: string) => boolean = () => false): Promise<string[]> {
  const gens = await listGenerations(rootsDir, name);
  const keepN = Math.max(1, Math.floor(keep));
  const kept = new Set(gens.slice(-keepN).map((g) => g.name));
  const removed: string[] = [];
  for (const g of gens) {
    if (kept.has(g.name) || g.current) continue;
    if (await isBuilding(g.dir)) continue;
    if (inUse(g.dir)) continue; // a machine's last boot used it: it may be running from it
    await removeGeneration(rootsDir, name, g.name);
    removed.push(g.name);
  }
  return removed;
}

/** `<rootsDir>/<name>/.<gen>.building`: beside the tree, not in it (mmdebstrap wants an empty target). */
export function buildingMarker(genDir: string): string {
  return path.join(path.dirname(genDir), `.${path.basename(genDir)}.building`);
}

async function isBuilding(dir: string): Promise<boolean> {
  try {
    await lstat(buildingMarker(dir));
    return true;
  } catch {
    return false;
  }
}
