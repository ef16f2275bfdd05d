/**
 * Resident memory of a server under load, read from /proc/PID/status, so
 * every bench measures RSS the same way for Sidereal and the reference
 * servers. A sampler keeps the peak over a phase (bounded: it stops itself).
 */
import { readFileSync } from 'node:fs';

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
