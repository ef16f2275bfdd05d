/**
 * Which process owns a build: "<pid>:<start time in clock ticks since boot>" (/proc/PID/stat
 * field 22). The start time tells a live owner from a PID reused after a crash or a reboot.
 */
import { readFileSync } from 'node:fs';

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": the comm may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export function ownerToken(pid = process.pid): string {
  return `${pid}:${statFields(pid)?.[19] ?? '0'}`;
}

/** True while the process that wrote `token` runs (not a zombie, not a reused PID). */
export function ownerAlive(token: string | null | undefined): boolean {
  const m = /^(\d+):(\d+)$/.exec(token ?? '');
  if (!m) return false;
  const f = statFields(Number(m[1]));
  return !!f && f[0] !== 'Z' && f[19] === m[2];
}

/** The environment variable every command of a build carries: the generation directory it builds. */
export const BUILD_TAG = 'SIDEREAL_BUILD';

/**
 * PIDs of the processes whose environment has SIDEREAL_BUILD=`genDir`: what a build started,
 * whatever became of its parent (debootstrap on the host as well as apt in the chroot).
 */
export async function buildProcesses(genDir: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const want = `${BUILD_TAG}=${genDir}`;
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = await readFile(`/proc/${e}/environ`, 'latin1');
      if (env.split('\0').includes(want)) pids.push(Number(e));
    } catch { /* gone, or a kernel thread */ }
  }
  return pids;
}

/** SIGKILL the processes of a dead build and wait (bounded) until they are gone. */
export async function killBuildProcesses(genDir: string, timeoutMs = 5000): Promise<number[]> {
  const pids = await buildProcesses(genDir);
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await buildProcesses(genDir)).length > 0) await new Promise((r) => setTimeout(r, 50));
  return pids;
}
