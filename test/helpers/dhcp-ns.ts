/**
 * Integration helpers for the DHCP server in network namespaces: build check,
 * the server runner process, real clients (busybox udhcpc, ISC dhclient) and
 * the raw probe. Every process is started here and stopped by PID by the
 * caller through `stop()`; every wait is bounded.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, readdirSync, statSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nsExec, nsSpawn } from './netns.js';
import type { RunnerConfig } from './dhcp-runner.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const runnerJs = join(repoRoot, 'dist', 'test', 'helpers', 'dhcp-runner.js');
export const probeJs = join(repoRoot, 'dist', 'test', 'helpers', 'dhcp-probe.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function newestMtime(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir)) if (f.endsWith('.ts')) t = Math.max(t, statSync(join(dir, f)).mtimeMs);
  return t;
}

/** `npm test` compiles first (pretest); compile here too when dist is missing or stale. */
export async function ensureBuilt(): Promise<void> {
  const srcTime = Math.max(newestMtime(join(repoRoot, 'server', 'dhcp')), newestMtime(join(repoRoot, 'test', 'helpers')));
  const fresh = (f: string) => existsSync(f) && statSync(f).mtimeMs >= srcTime;
  if (fresh(runnerJs) && fresh(probeJs)) return;
  // Other folders' type errors must not block this: tsc still emits.
  await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, reject: false });
  if (!existsSync(runnerJs) || !existsSync(probeJs)) throw new Error('tsc did not emit dist/test/helpers/dhcp-runner.js');
}

export interface Runner {
  proc: ResultPromise;
  lines: () => Array<Record<string, unknown>>;
  waitFor(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | undefined>;
  alive(): boolean;
  stop(): Promise<void>;
}

export async function startRunner(ns: string, cfg: RunnerConfig): Promise<Runner> {
  const proc = nsSpawn(ns, process.execPath, [runnerJs, JSON.stringify(cfg)], { buffer: false, stdin: 'ignore' });
  const parsed: Array<Record<string, unknown>> = [];
  let partial = '';
  let exited = false;
  proc.stdout?.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) { try { parsed.push(JSON.parse(p) as Record<string, unknown>); } catch { parsed.push({ raw: p }); } }
  });
  proc.stderr?.on('data', (d: Buffer) => parsed.push({ stderr: d.toString() }));
  void proc.then(() => { exited = true; });
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = parsed.find(pred);
      if (hit) return hit;
      if (exited) return parsed.find(pred);
      await sleep(50);
    }
    return undefined;
  };
  const runner: Runner = {
    proc, lines: () => parsed, waitFor, alive: () => !exited,
    async stop() {
      if (exited || proc.pid === undefined) return;
      proc.kill('SIGTERM');
      const deadline = Date.now() + 5000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) proc.kill('SIGKILL');
      await proc;
    },
  };
  const ready = await waitFor((l) => l.listening === true || 'fatal' in l, 20_000);
  if (!ready || !ready.listening) {
    await runner.stop();
    throw new Error(`dhcp runner did not start: ${JSON.stringify(parsed)}`);
  }
  return runner;
}

/** udhcpc script that prints the lease as KEY=VALUE lines and touches nothing. */
export function writeClientScripts(dir: string): { udhcpc: string; dhclient: string } {
  const udhcpc = join(dir, 'udhcpc.sh');
  writeFileSync(udhcpc, '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "event=$1"\nenv | grep -E \'^(ip|siaddr|boot_file|serverid|subnet|router|hostname|lease|domain|dns)=\'\nexit 0\n');
  chmodSync(udhcpc, 0o755);
  const dhclient = join(dir, 'dhclient.sh');
  writeFileSync(dhclient, `#!/bin/sh\n{ echo "reason=$reason"; env | grep -E '^new_'; echo "--"; } >> "${join(dir, 'dhclient.env')}"\nexit 0\n`);
  chmodSync(dhclient, 0o755);
  return { udhcpc, dhclient };
}

export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** busybox udhcpc, bounded: -n exits when no lease, -q exits after one. */
export async function udhcpc(ns: string, ifname: string, script: string, extra: string[] = [], tries = 4) {
  const r = await nsExec(ns, 'timeout', ['60', 'udhcpc', '-i', ifname, '-f', '-n', '-q', '-t', String(tries), '-T', '2', '-A', '1', '-s', script, ...extra], { reject: false });
  return { exitCode: r.exitCode, env: parseEnv(String(r.stdout)), stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** ISC dhclient with our own conf, lease file, pid file and env-recording script; killed by PID once bound. */
export async function dhclient(ns: string, ifname: string, dir: string, script: string) {
  const conf = join(dir, 'dhclient.conf');
  writeFileSync(conf, 'timeout 25;\nretry 5;\nrequest subnet-mask, broadcast-address, routers, host-name;\n');
  const envFile = join(dir, 'dhclient.env');
  const proc = nsSpawn(ns, 'timeout', ['45', 'dhclient', '-4', '-1', '-d', '-v', '-cf', conf, '-sf', script,
    '-lf', join(dir, 'dhclient.leases'), '-pf', join(dir, 'dhclient.pid'), ifname]);
  let exited = false;
  void proc.then(() => { exited = true; });
  const deadline = Date.now() + 40_000;
  let env: Record<string, string> | undefined;
  while (Date.now() < deadline && !exited) {
    const text = existsSync(envFile) ? readFileSync(envFile, 'utf8') : '';
    const bound = text.split('--\n').find((b) => /reason=(BOUND|REBOOT|RENEW)/.test(b));
    if (bound) { env = parseEnv(bound); break; }
    await sleep(100);
  }
  if (!exited) proc.kill('SIGTERM');
  const r = await proc;
  return { env, stderr: String(r.stderr ?? '') };
}

/** Run the raw probe in a namespace and parse its one JSON line. */
export async function probe(ns: string, cmd: object): Promise<Record<string, any>> {
  const r = await nsExec(ns, 'timeout', ['60', process.execPath, probeJs, JSON.stringify(cmd)], { reject: false });
  const line = String(r.stdout).trim().split('\n').pop() ?? '';
  try { return JSON.parse(line) as Record<string, any>; } catch { throw new Error(`probe output: ${r.stdout} ${r.stderr}`); }
}
