/**
 * How an exports file reaches the NFS server:
 *  - kernel: /etc/exports.d/sidereal.exports, then `exportfs -ra`, then `exportfs -v` must
 *    list every path (exportfs skips a line it cannot use with only a warning);
 *  - ganesha: the file of EXPORT blocks ganesha.conf `%include`s, then SIGHUP to the pid in
 *    its pid file (ganesha re-reads its exports: added, changed, removed, live).
 * Files are written to a temporary name and renamed over: never half-written.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SiderealConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { run } from '../run.js';

export interface ExportBackend {
  name: 'kernel' | 'ganesha';
  /** The file this backend owns. */
  file: string;
  /** Install `text` and make the server use it; throws naming what failed. */
  apply(text: string, paths: string[]): Promise<void>;
  /** Between changes: why the server cannot be serving them now, if it cannot (checked on every poll). */
  health?(): Promise<string | undefined>;
}

export async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export function kernelBackend(file: string, logger?: Logger): ExportBackend {
  return {
    name: 'kernel',
    file,
    async apply(text, paths) {
      await writeAtomic(file, text);
      const ra = await run(['exportfs', '-ra'], { logger, reject: false }).catch((e: unknown) => {
        const missing = (e as { cause?: { code?: string } }).cause?.code === 'ENOENT';
        throw new Error(missing ? `exportfs is not installed (apt-get install nfs-kernel-server): ${file} is written, not applied` : (e as Error).message);
      });
      if (ra.exitCode !== 0) throw new Error(`exportfs -ra failed (${ra.exitCode}): ${(ra.stderr || ra.stdout).trim()}`);
      const v = await run(['exportfs', '-v'], { logger, reject: false });
      if (v.exitCode !== 0) throw new Error(`exportfs -v failed (${v.exitCode}): ${v.stderr.trim()}`);
      const listed = new Set(v.stdout.split('\n').map((l) => l.trim().split(/\s/)[0]).filter(Boolean));
      const missing = paths.filter((p) => !listed.has(p));
      if (missing.length) throw new Error(`exportfs -v does not list ${missing.join(', ')}${ra.stderr.trim() ? ` (exportfs said: ${ra.stderr.trim()})` : ''}`);
    },
  };
}

export function ganeshaBackend(file: string, pidFile: string): ExportBackend {
  /** ganesha's pid, or why there is none running. */
  const ganeshaPid = async (): Promise<number | string> => {
    let pid: number;
    try {
      pid = Number.parseInt((await readFile(pidFile, 'utf8')).trim(), 10);
    } catch (e) {
      return `nfs-ganesha is not running (no pid file ${pidFile}: ${(e as NodeJS.ErrnoException).code})`;
    }
    try {
      process.kill(pid, 0);
      return pid;
    } catch (e) {
      return `nfs-ganesha is not running (pid ${pid} from ${pidFile}: ${(e as NodeJS.ErrnoException).code})`;
    }
  };
  return {
    name: 'ganesha',
    file,
    async apply(text) {
      await writeAtomic(file, text);
      const pid = await ganeshaPid();
      if (typeof pid === 'string') throw new Error(`${pid}: ${file} is written, not loaded`);
      process.kill(pid, 'SIGHUP');
    },
    async health() {
      const pid = await ganeshaPid();
      return typeof pid === 'string' ? pid : undefined;
    },
  };
}

export function backendFor(config: SiderealConfig, logger?: Logger): ExportBackend | undefined {
  switch (config.nfs.backend) {
    case 'kernel': return kernelBackend(config.nfs.exportsFile, logger);
    case 'ganesha': return ganeshaBackend(config.nfs.ganesha.exportsFile, config.nfs.ganesha.pidFile);
    case 'none': return undefined;
  }
}
