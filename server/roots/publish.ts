/**
 * Making a generation the live one: its kernel and initrd copied to the TFTP root, the root
 * registered in the inventory, then `current` switched. The same function serves a build's last
 * step, `root rollback` and the daemon's start-up check, so a rollback republishes the older
 * generation's own kernel and initrd (same kernel version or not) and a crash between two of the
 * three moves is repaired by running it again.
 *
 *   <rootsDir>/<name>/gen-<ts>.json   what a generation publishes (written by its build)
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Recipe } from './recipe.js';
import { CURRENT, currentGeneration, listGenerations, rootDir, switchCurrent } from './generations.js';
import { fileInTree } from './tree-path.js';

/** What a generation publishes, kept beside its tree. */
export interface GenerationInfo {
  root: string;
  arch: Recipe['arch'];
  kver: string;
  kernelArgs: string;
  overlay: Recipe['overlay'];
  /** `from`: path in the tree; `name`: file name in the TFTP root. The kernel first, then the initrd. */
  files: Array<{ from: string; name: string; mode: number }>;
  builtAt: number;
  buildId?: number;
}

export interface PublishedRoot {
  name: string;
  arch: Recipe['arch'];
  /** File names in the TFTP root. */
  kernel: string;
  initrd: string;
  /** `<rootsDir>/<name>/current`: what the NFS export serves. */
  nfsPath: string;
  generation: string;
  kernelArgs: string;
  overlay: Recipe['overlay'];
}

export type Register = (root: PublishedRoot) => void | Promise<void>;

export function infoPath(rootsDir: string, name: string, gen: string): string {
  return path.join(rootDir(rootsDir, name), `${gen}.json`);
}

export async function writeGenerationInfo(rootsDir: string, gen: string, info: GenerationInfo): Promise<void> {
  const file = infoPath(rootsDir, info.root, gen);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o644 });
  await rename(tmp, file);
}

export async function readGenerationInfo(rootsDir: string, name: string, gen: string): Promise<GenerationInfo | undefined> {
  try {
    return JSON.parse(await readFile(infoPath(rootsDir, name, gen), 'utf8')) as GenerationInfo;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${infoPath(rootsDir, name, gen)}: ${(e as Error).message}`);
  }
}

/**
 * Copy each file under a temporary name, set its mode (dracut writes the initrd 0600), then
 * rename over: a node fetching it meanwhile gets the old file or the new one, whole.
 */
export async function publishFiles(treeDir: string, tftpRoot: string, files: GenerationInfo['files']): Promise<string[]> {
  const names: string[] = [];
  for (const f of files) {
    if (path.basename(f.name) !== f.name || f.name.startsWith('.')) throw new Error(`not a file name: ${f.name}`);
    const src = await fileInTree(treeDir, f.from);
    const dst = path.join(tftpRoot, f.name);
    const tmp = path.join(tftpRoot, `.${f.name}.${process.pid}.tmp`);
    try {
      // A leftover of a crash goes first; then COPYFILE_EXCL: a link planted at the temporary name is never written through.
      await rm(tmp, { force: true });
      await copyFile(src, tmp, constants.COPYFILE_EXCL);
      await chmod(tmp, f.mode);
      await rename(tmp, dst);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    names.push(f.name);
  }
  return names;
}

/**
 * True when the TFTP root holds `files` as they are in the tree, byte for byte. Their names alone
 * do not tell: a rebuild with the same kernel publishes the same names, so a crash between its
 * publishing and its `current` switch leaves the new generation's files under the old one.
 */
export async function publishedMatch(treeDir: string, tftpRoot: string, files: GenerationInfo['files']): Promise<boolean> {
  for (const f of files) {
    const dst = path.join(tftpRoot, f.name);
    let src: string;
    try {
      src = await fileInTree(treeDir, f.from);
      if ((await stat(src)).size !== (await stat(dst)).size) return false;
    } catch {
      return false;
    }
    if ((await digest(src)) !== (await digest(dst))) return false;
  }
  return true;
}

async function digest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Publish `gen`'s files, register the root, switch `current` to it: in that order, so `current` moves last. */
export async function activateGeneration(o: {
  rootsDir: string; tftpRoot: string; name: string; generation: string; register?: Register;
}): Promise<PublishedRoot> {
  const info = await readGenerationInfo(o.rootsDir, o.name, o.generation);
  if (!info) throw new Error(`${o.name}/${o.generation} has no ${o.generation}.json: it was not built to the end`);
  const treeDir = path.join(rootDir(o.rootsDir, o.name), o.generation);
  const [kernel, initrd] = await publishFiles(treeDir, o.tftpRoot, info.files);
  const published: PublishedRoot = {
    name: o.name, arch: info.arch, kernel: kernel!, initrd: initrd!, generation: o.generation,
    nfsPath: path.join(rootDir(o.rootsDir, o.name), CURRENT), kernelArgs: info.kernelArgs, overlay: info.overlay,
  };
  await o.register?.(published);
  await switchCurrent(o.rootsDir, o.name, o.generation);
  return published;
}

/**
 * The generation a rollback goes to: `to` when given (any built generation: rolling forward
 * again is allowed), else the newest one older than `current` that finished its build.
 */
export async function rollbackTarget(rootsDir: string, name: string, to?: string): Promise<string> {
  const gens = await listGenerations(rootsDir, name);
  const cur = await currentGeneration(rootsDir, name);
  if (to !== undefined) {
    if (!gens.some((g) => g.name === to)) throw new RollbackError('generation', `${name} has no generation ${to} (it has: ${gens.map((g) => g.name).join(', ') || 'none'})`);
    if (to === cur) throw new RollbackError('generation', `${to} is already the current generation of ${name}`);
    if (!(await readGenerationInfo(rootsDir, name, to))) throw new RollbackError('generation', `${name}/${to} did not finish its build`);
    return to;
  }
  if (!cur) throw new RollbackError('name', `${name} has no current generation under ${rootDir(rootsDir, name)}`);
  const older = gens.filter((g) => g.name < cur).reverse();
  for (const g of older) if (await readGenerationInfo(rootsDir, name, g.name)) return g.name;
  throw new RollbackError('name', `${name} has no generation older than ${cur} to roll back to (keepGenerations keeps ${gens.length})`);
}

export class RollbackError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = 'RollbackError';
  }
}
