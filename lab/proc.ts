/** Stopping the processes the lab started: by PID, bounded in time. */
import type { ResultPromise } from 'execa';

/** Children started by the lab and not yet stopped, so a Ctrl-C handler can stop them all by PID. */
const live = new Set<ResultPromise>();

/** Remember a child until it exits (or stopChild is called on it). */
export function track<T extends ResultPromise>(child: T): T {
  live.add(child);
  child.then(() => live.delete(child), () => live.delete(child));
  return child;
}

/** Stop every tracked child, each by its own PID. */
export async function stopAllTracked(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, 2000)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM the child by its PID, wait up to `graceMs` for it to exit, then
 * SIGKILL it and wait a little more. Never throws.
 */
export async function stopChild(child: ResultPromise | undefined, graceMs = 3000): Promise<void> {
  if (!child || child.pid === undefined) return;
  live.delete(child);
  const pid = child.pid;
  if (child.exitCode !== null || !alive(pid)) {
    await Promise.race([child.catch(() => undefined), sleep(200)]);
    return;
  }
  const done = child.then(() => true, () => true);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await Promise.race([done, sleep(graceMs).then(() => false)])) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await Promise.race([done, sleep(2000)]);
}

/** Stop a process known only by PID (e.g. from a pid file). */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
