/**
 * Runs the real `sidereal serve` (the compiled CLI) inside a namespace and
 * the CLI next to it, as an admin would. Log lines are parsed as they come so
 * tests can assert on them; the daemon is stopped by PID.
 */
import { execa, type ResultPromise } from 'execa';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installDir } from '../../server/install-dir.js';
import { stringify } from 'yaml';
import { nsExec, nsSpawn } from './netns.js';

/** The repository root, from test/helpers/ (vitest) or dist/test/helpers/ (compiled benches). */
export const repoRoot = installDir();
export const siderealBin = join(repoRoot, 'bin', 'sidereal.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function writeConfig(file: string, doc: Record<string, unknown>): string {
  writeFileSync(file, stringify(doc));
  return file;
}

/** The CLI, run to completion on this host (--offline, token commands). */
export async function cli(config: string, ...args: string[]) {
  const r = await execa(process.execPath, [siderealBin, '--config', config, ...args], { reject: false, timeout: 30_000 });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The CLI inside a namespace, talking to the API of the `serve` running there, with a token. */
export async function cliIn(ns: string, config: string, token: string, ...args: string[]) {
  const r = await nsExec(ns, process.execPath, [siderealBin, '--config', config, ...args], {
    reject: false, timeout: 30_000, env: { SIDEREAL_TOKEN: token },
  });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export interface Served {
  proc: ResultPromise;
  lines: Array<Record<string, unknown>>;
  alive(): boolean;
  waitFor(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | undefined>;
  stop(): Promise<number | undefined>;
}

/**
 * `ns` null: on this host, for a daemon with DHCP and TFTP off that listens on loopback only
 * (and must share this mount namespace: `ip netns exec` gives its command a mount namespace of its own).
 * `hostMounts`: in `ns`'s network but this mount namespace (nsenter --net), for a daemon whose
 * root builds' mounts the test must see, and a restarted daemon must find and undo.
 */
export async function startServe(ns: string | null, config: string, args: string[] = [], o: { hostMounts?: boolean; readyMs?: number } = {}): Promise<Served> {
  const argv = [siderealBin, '--config', config, 'serve', ...args];
  // No SIGKILL from execa 5 s after a SIGTERM: a graceful stop may take stopGraceSeconds (stop() below has its own deadline).
  const opts = { reject: false, buffer: false, stdin: 'ignore', forceKillAfterDelay: false } as const;
  const proc = ns && o.hostMounts
    ? execa('nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...argv], opts)
    : ns
      ? nsSpawn(ns, process.execPath, argv, opts)
      : execa(process.execPath, argv, opts);
  const lines: Array<Record<string, unknown>> = [];
  let partial = '';
  let exited = false;
  let exitCode: number | undefined;
  proc.stdout?.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      try { lines.push(JSON.parse(p) as Record<string, unknown>); } catch { lines.push({ raw: p }); }
    }
  });
  proc.stderr?.on('data', (d: Buffer) => lines.push({ stderr: d.toString() }));
  void proc.then((r) => { exited = true; exitCode = r.exitCode; });
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = lines.find(pred);
      if (hit || exited) return hit;
      await sleep(50);
    }
    return undefined;
  };
  const served: Served = {
    proc, lines, waitFor, alive: () => !exited,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        // A graceful stop lets transfers in flight finish (stopGraceSeconds, 10 by default): wait longer than that.
        const deadline = Date.now() + 30_000;
        while (!exited && Date.now() < deadline) await sleep(50);
        if (!exited) proc.kill('SIGKILL');
        await proc;
      }
      return exitCode;
    },
  };
  const ready = await waitFor((l) => l.msg === 'ready', o.readyMs ?? 30_000);
  if (!ready) {
    await served.stop();
    throw new Error(`sidereal serve did not start: ${JSON.stringify(lines)}`);
  }
  return served;
}
