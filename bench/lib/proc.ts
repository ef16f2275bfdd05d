/**
 * What a server costs under load, read from /proc the same way for Sidereal
 * and the reference servers: CPU seconds (user + system) and resident
 * memory, of one process, of a master and its workers (nginx), or of a
 * whole tree (tftpd-hpa forks one child per transfer). A sampler keeps the
 * peak RSS over a phase (bounded: it stops itself).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux). */
const HZ = 100;

/** utime, stime, cutime, cstime of a process in seconds, or null once it is gone. */
export function procTimes(pid: number): { user: number; sys: number; reapedUser: number; reapedSys: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / HZ, sys: Number(f[12]) / HZ, reapedUser: Number(f[13]) / HZ, reapedSys: Number(f[14]) / HZ };
  } catch {
    return null;
  }
}

/** user + system CPU seconds of these processes, summed (gone ones count 0). */
export function cpuSeconds(pids: number[]): number {
  return pids.reduce((a, p) => { const t = procTimes(p); return a + (t ? t.user + t.sys : 0); }, 0);
}

/** Direct children of a process (nginx's workers). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process and every descendant, from every /proc/N/status PPid (bounded). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${e}/status`, 'utf8'));
      if (!m) continue;
      const pp = Number(m[1]);
      const list = children.get(pp) ?? [];
      list.push(Number(e));
      children.set(pp, list);
    } catch { /* gone meanwhile */ }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length && out.length < 10_000) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds of a whole tree: the live processes, plus the children the root already reaped. */
export function treeCpuSeconds(root: number): number {
  const r = procTimes(root);
  return cpuSeconds(processTree(root)) + (r ? r.reapedUser + r.reapedSys : 0);
}

/** VmRSS of a live process in MiB, or NaN once it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface RssSampler {
  /** Stop sampling; the peak RSS seen (MiB) over every listed process summed. */
  stop(): number;
}

/**
 * Sample the summed RSS of `pids` every `everyMs` until stop() or `maxMs`
 * (a sampler forgotten by an error path ends on its own).
 */
export function sampleRss(pids: number[], everyMs = 100, maxMs = 30 * 60_000): RssSampler {
  let peak = 0;
  const take = () => {
    const sum = pids.reduce((a, p) => a + (rssMiB(p) || 0), 0);
    if (sum > peak) peak = sum;
  };
  take();
  const timer = setInterval(take, everyMs);
  const end = setTimeout(() => clearInterval(timer), maxMs);
  timer.unref();
  end.unref();
  return {
    stop() {
      take();
      clearInterval(timer);
      clearTimeout(end);
      return peak;
    },
  };
}

/**
 * CPU time the hypervisor took from this machine (all CPUs, /proc/stat
 * `steal`), seconds. Read before and after a phase: a latency tail that comes
 * with seconds of steal is the host's, whichever server ran.
 */
export function stealSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal ...
  return Number(line.trim().split(/\s+/)[8] ?? 0) / HZ;
}
