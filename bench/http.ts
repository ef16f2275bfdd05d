/**
 * HTTP boot (issue 6): a kernel and a 60 MiB initrd to 1 and to 100
 * clients at once, from the real `sidereal serve` (its /files/ route)
 * against nginx serving the same two files from the same directory, with
 * the same client.
 *
 * Both servers run in a network namespace this script creates; the clients
 * run in a second one, over a veth pair (default MTU 1500, as a boot
 * network). Nothing touches the host's interfaces. Everything started is
 * stopped by PID; the namespaces and files are removed at the end, even on
 * error.
 *
 * The client: one `curl` process per simulated node, fetching the kernel then
 * the initrd on one kept-alive connection (as iPXE does), all started at once
 * by one bash script, which reports the wall time from its first fork to the
 * last curl's exit and the CPU its curls used (`times`), so the report shows
 * whether the client could have been the bottleneck. Each server's own CPU
 * (utime+stime from /proc, nginx master and workers summed), its run-queue
 * wait (schedstat: on a shared machine, time runnable without a CPU) and
 * peak RSS (bench/lib/rss.ts) are read over the same window.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/http.js [--quick]
 *   development: [--clients 1,10,100] [--runs N] [--servers sidereal,nginx,nginx-1w]
 *                [--prof DIR] (a V8 CPU profile of the daemon, see bench/lib/http-prof.ts)
 *
 * Needs root (ip netns), curl, bash and /usr/sbin/nginx.
 */
import { execa, type ResultPromise } from 'execa';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNs, destroyAll, linkNamespaces, nsExec, nsSpawn } from '../test/helpers/netns.js';
import { startServe, writeConfig, type Served } from '../test/helpers/serve.js';
import { stopChild } from '../lab/proc.js';
import { isMain, percentile, runStandalone, stat, type Row, type Section, type Stat } from './lib/report.js';
import { childPids, procTimes, rssMiB, sampleRss } from './lib/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const REAL_KERNEL = '/var/cache/sidereal-lab/linux-6.1.0-56-amd64/vmlinuz-6.1.0-56-amd64';
const INITRD_BYTES = 60 * 1024 * 1024;
const SRV_ADDR = '10.78.0.1';
const CLI_ADDR = '10.78.0.2';
const SIDEREAL_PORT = 8080;
const NGINX_PORT = 8090;
const KERNEL_NAME = 'vmlinuz-bench';
const INITRD_NAME = 'initrd.img-bench';
/** Per-client limit (curl --max-time) and the whole client script's limit. */
const CURL_MAX_S = 120;
const SCRIPT_TIMEOUT_MS = 180_000;

/**
 * nginx as it ships (worker_processes auto: one per core, two here) is the
 * reference of the target; nginx with one worker is measured too, as a
 * reference only (Sidereal sends bodies from `http.threads` pump threads, 2 by default).
 */
type Server = 'sidereal' | 'nginx' | 'nginx-1w';
const ALL_SERVERS: Server[] = ['sidereal', 'nginx', 'nginx-1w'];
const NGINX_1W_PORT = 8091;

/**
 * N curls at once, each fetching the kernel then the initrd on one
 * connection; prints one line per client (`C exit code bytes seconds code
 * bytes seconds`, curl's own figures for its two transfers), then the wall
 * time in microseconds from the first fork to the last exit, and `times`
 * (its second line is the CPU of the children: the curls and their subshells).
 */
const CLIENT_SH = `#!/bin/bash
n=$1; k=$2; i=$3; max=$4
w='%{http_code} %{size_download} %{time_total} '
t0=$EPOCHREALTIME
for ((c = 0; c < n; c++)); do
  ( out=$(curl -sS --max-time "$max" -o /dev/null -w "$w" "$k" -o /dev/null -w "$w" "$i"); echo "C $? $out" ) &
done
wait
t1=$EPOCHREALTIME
echo "WALL_US $(( \${t1/./} - \${t0/./} ))"
times
`;

type NumKey = { [K in keyof RunResult]: RunResult[K] extends number ? K : never }[keyof RunResult];

interface RunResult {
  seconds: number;
  mbps: number;
  failures: number;
  clientCpuS: number;
  serverCpuS: number;
  /** Every CPU of the machine over the run (other processes included): busy and idle seconds, of which softirq. */
  machineBusyS: number;
  machineIdleS: number;
  softirqS: number;
  /** The script's clock, first fork to last exit (the figure for N clients). */
  wallS: number;
  /** Time the server was runnable but waiting for a CPU (schedstat; nginx: master + workers summed). */
  runDelayS: number;
  /** curl's own clock for each client's two transfers, summed (the figure for 1 client: no process start in it). */
  clientS: number[];
  serverUserS: number;
  serverSysS: number;
  rssMiB: number;
}

/** [utime, stime] in seconds of a process and its direct children (nginx: master and workers). */
function userSys(pid: number): [number, number] {
  return [pid, ...childPids(pid)].reduce<[number, number]>((a, p) => { const t = procTimes(p); return t ? [a[0] + t.user, a[1] + t.sys] : a; }, [0, 0]);
}

/** Machine-wide CPU seconds from /proc/stat: [busy, idle, softirq] (every CPU summed). */
function machineCpu(): [number, number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return [(user + nice + system + irq + softirq + steal) / 100, (idle + iowait) / 100, softirq / 100];
}

/** Run-queue wait (s) of a process's main thread and its children's: time runnable but not running. */
function runDelay(pid: number): number {
  const one = (p: number) => { try { return Number(readFileSync(`/proc/${p}/schedstat`, 'utf8').split(' ')[1]) / 1e9; } catch { return 0; } };
  return [pid, ...childPids(pid)].reduce((a, p) => a + one(p), 0);
}

function parseTimes(lines: string[]): number {
  // `times`: shell user/sys, then children user/sys, as "0m1.234s 0m0.567s".
  const sec = (t: string) => { const m = /^(\d+)m([\d.]+)s$/.exec(t); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; };
  const tl = lines.filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l));
  const child = tl[1]?.split(' ') ?? [];
  return sec(child[0] ?? '') + sec(child[1] ?? '');
}

async function fetchAll(cliNs: string, script: string, port: number, clients: number, pid: number, expect: [number, number]): Promise<RunResult> {
  const base = `http://${SRV_ADDR}:${port}/files`;
  const cpu0 = userSys(pid);
  const m0 = machineCpu();
  const d0 = runDelay(pid);
  const rss = sampleRss([pid, ...childPids(pid)], 50);
  const r = await nsExec(cliNs, 'bash', [script, String(clients), `${base}/${KERNEL_NAME}`, `${base}/${INITRD_NAME}`, String(CURL_MAX_S)],
    { reject: false, timeout: SCRIPT_TIMEOUT_MS });
  const rssMiB = rss.stop();
  const cpu1 = userSys(pid);
  const m1 = machineCpu();
  const runDelayS = runDelay(pid) - d0;
  const serverUserS = cpu1[0] - cpu0[0];
  const serverSysS = cpu1[1] - cpu0[1];
  const serverCpuS = serverUserS + serverSysS;
  const lines = String(r.stdout).split('\n');
  const wall = lines.find((l) => l.startsWith('WALL_US '));
  if (r.exitCode !== 0 || !wall) throw new Error(`client script failed (exit ${r.exitCode}): ${String(r.stderr).slice(0, 2000)}`);
  const wallS = Number(wall.split(' ')[1]) / 1e6;
  const perClient = lines.filter((l) => l.startsWith('C ')).map((l) => l.split(' ').slice(1));
  // A client fails when its curl exits non-zero, or either transfer is not a whole 200; a missing line is a failure too.
  const ok = perClient.filter((f) => f[0] === '0' && f[1] === '200' && Number(f[2]) === expect[0] && f[4] === '200' && Number(f[5]) === expect[1]);
  const failures = clients - ok.length;
  const clientS = ok.map((f) => Number(f[3]) + Number(f[6]));
  const seconds = clients === 1 && clientS.length === 1 ? clientS[0]! : wallS;
  const bytes = clients * (expect[0] + expect[1]);
  return { seconds, mbps: bytes / seconds / 1e6, failures, clientCpuS: parseTimes(lines), serverCpuS,
    machineBusyS: m1[0] - m0[0], machineIdleS: m1[1] - m0[1], softirqS: m1[2] - m0[2], wallS, clientS, runDelayS, serverUserS, serverSysS, rssMiB };
}

function nginxConf(dir: string, root: string, workers: string, port: number, tag: string): string {
  return `worker_processes ${workers};
error_log ${dir}/${tag}-error.log warn;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  default_type application/octet-stream;
  access_log ${dir}/${tag}-access.log;
  client_body_temp_path ${dir}/${tag}-tmp/body;
  proxy_temp_path ${dir}/${tag}-tmp/proxy;
  fastcgi_temp_path ${dir}/${tag}-tmp/fastcgi;
  uwsgi_temp_path ${dir}/${tag}-tmp/uwsgi;
  scgi_temp_path ${dir}/${tag}-tmp/scgi;
  server {
    listen ${SRV_ADDR}:${port};
    location /files/ { alias ${root}/; }
  }
}
`;
}

async function waitHttp(ns: string, url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await nsExec(ns, 'curl', ['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', url], { reject: false });
    if (String(r.stdout) === '200') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`nothing answers ${url}`);
}

const row = (c: string, metric: string, unit: string, by: Record<Server, number[]>, extra: Partial<Row> = {}): Row => ({
  case: c, metric, unit, sidereal: stat(by.sidereal),
  others: Object.fromEntries((['nginx', 'nginx-1w'] as const).filter((k) => by[k].length > 0).map((k) => [k, stat(by[k])])), ...extra,
});

/** Development knobs (command line only): client counts, runs, and a CPU profile of the daemon. */
export interface DevOptions {
  levels?: number[];
  runs?: number;
  /** Only these servers (profiling one at a time). */
  servers?: Server[];
  /** Write `node --cpu-prof` profiles of `sidereal serve` to this directory. */
  profDir?: string;
}

export async function run(opts: { quick?: boolean } & DevOptions = {}): Promise<Section> {
  const runs = opts.runs ?? (opts.quick ? 1 : 3);
  const levels = opts.levels ?? [1, 100];
  // Quick mode leaves out the one-worker nginx (informative only) to stay under 30 s.
  const SERVERS = opts.servers ?? (opts.quick ? ALL_SERVERS.filter((x) => x !== 'nginx-1w') : ALL_SERVERS);
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-bench-http-'));
  let served: Served | undefined;
  const nginxes: ResultPromise[] = [];
  const raw: Record<string, Record<Server, RunResult[]>> = {};
  const notes: string[] = [];
  try {
    // nginx's workers run as nobody: the tree must be world-readable.
    chmodSync(dir, 0o755);
    const root = join(dir, 'tftp');
    mkdirSync(root, { mode: 0o755 });
    const kernelPath = join(root, KERNEL_NAME);
    const realKernel = existsSync(REAL_KERNEL);
    if (realKernel) copyFileSync(REAL_KERNEL, kernelPath);
    else writeFileSync(kernelPath, randomBytes(8 * 1024 * 1024));
    const parts: Buffer[] = [];
    for (let left = INITRD_BYTES; left > 0; left -= 1 << 20) parts.push(randomBytes(Math.min(left, 1 << 20)));
    writeFileSync(join(root, INITRD_NAME), Buffer.concat(parts));
    parts.length = 0;
    chmodSync(kernelPath, 0o644);
    chmodSync(join(root, INITRD_NAME), 0o644);
    const sizes: [number, number] = [statSync(kernelPath).size, INITRD_BYTES];
    const script = join(dir, 'clients.sh');
    writeFileSync(script, CLIENT_SH, { mode: 0o755 });

    const srv = await createNs('hsrv');
    const cli = await createNs('hcli');
    const link = await linkNamespaces(srv, `${SRV_ADDR}/24`, cli, `${CLI_ADDR}/24`, 'h');
    const config = writeConfig(join(dir, 'sidereal.yaml'), {
      interface: link.aIf, serverAddress: SRV_ADDR, dataDir: join(dir, 'data'),
      dhcp: { enabled: false, subnet: '10.78.0.0/24' },
      tftp: { enabled: false, root },
      http: { listen: SRV_ADDR, port: SIDEREAL_PORT },
      api: { enabled: false },
    });
    // startServe's daemon inherits this process's environment: set the profiler preload for it only.
    const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, SIDEREAL_PROF_DIR: process.env.SIDEREAL_PROF_DIR };
    if (opts.profDir) {
      process.env.NODE_OPTIONS = `${saved.NODE_OPTIONS ?? ''} --import ${join(here, 'lib', 'http-prof.js')}`.trim();
      process.env.SIDEREAL_PROF_DIR = opts.profDir;
    }
    try {
      served = await startServe(srv, config);
    } finally {
      for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
    }
    const ports: Record<Server, number> = { sidereal: SIDEREAL_PORT, nginx: NGINX_PORT, 'nginx-1w': NGINX_1W_PORT };
    const pids: Record<Server, number> = { sidereal: served.proc.pid!, nginx: 0, 'nginx-1w': 0 };
    for (const [tag, workers] of [['nginx', 'auto'], ['nginx-1w', '1']] as const) {
      if (!SERVERS.includes(tag)) continue;
      const conf = join(dir, `${tag}.conf`);
      mkdirSync(join(dir, `${tag}-tmp`));
      writeFileSync(conf, nginxConf(dir, root, workers, ports[tag], tag));
      const p = nsSpawn(srv, '/usr/sbin/nginx', ['-c', conf, '-e', join(dir, `${tag}-error.log`), '-g', `daemon off; pid ${join(dir, `${tag}.pid`)};`],
        { stdout: 'ignore', stderr: 'pipe', buffer: false });
      nginxes.push(p);
      pids[tag] = p.pid!;
    }
    // Sidereal's RSS before any fetch: what the 100-client peak adds to it (the connections, the requests in flight).
    const idleRss = rssMiB(pids.sidereal);
    for (const s of SERVERS) await waitHttp(cli, `http://${SRV_ADDR}:${ports[s]}/files/${KERNEL_NAME}`);
    // One untimed round per server: page cache, Sidereal's copies and JIT, nginx workers up.
    const warm = opts.quick ? 2 : 8;
    for (const s of SERVERS) await fetchAll(cli, script, ports[s], warm, pids[s], sizes);

    for (const clients of levels) {
      const by: Record<Server, RunResult[]> = { sidereal: [], nginx: [], 'nginx-1w': [] };
      raw[`${clients}`] = by;
      // Runs alternate between the servers (and which goes first) so a slow spell of this shared machine hits both alike.
      // One client is a tenth of a second per run: more runs, so the median stands on this shared machine.
      const n = clients === 1 ? opts.runs ?? (opts.quick ? 1 : 15) : runs;
      // nginx with one worker only where parallelism can matter: many clients.
      const here1 = SERVERS.filter((x) => x !== 'nginx-1w' || clients > 1);
      for (let i = 0; i < n; i++) {
        const order = i % 2 === 0 ? here1 : [...here1].reverse();
        for (const s of order) {
          const r = await fetchAll(cli, script, ports[s], clients, pids[s], sizes);
          by[s].push(r);
          process.stderr.write(`${clients} client(s) ${s}: ${r.mbps.toFixed(0)} MB/s, ${r.seconds.toFixed(2)} s, ${r.failures} failed, ` +
            `server CPU ${r.serverUserS.toFixed(2)} user + ${r.serverSysS.toFixed(2)} sys s, client CPU ${r.clientCpuS.toFixed(2)} s, RSS ${r.rssMiB.toFixed(0)} MiB, ` +
            `machine busy ${r.machineBusyS.toFixed(1)} idle ${r.machineIdleS.toFixed(1)} softirq ${r.softirqS.toFixed(1)} s, script wall ${r.wallS.toFixed(2)} s, run-queue wait ${r.runDelayS.toFixed(2)} s, ` +
            `per client (curl) min/p50/max ${[0, 50, 100].map((q) => percentile(r.clientS, q).toFixed(2)).join('/')} s\n`);
        }
      }
    }
    if (!served.alive()) throw new Error('sidereal serve died during the bench');

    const rows: Row[] = [];
    for (const clients of levels) {
      const by = raw[`${clients}`]!;
      const f = (k: NumKey) => ({ sidereal: by.sidereal.map((r) => r[k]), nginx: by.nginx.map((r) => r[k]), 'nginx-1w': by['nginx-1w'].map((r) => r[k]) });
      const c = `kernel + initrd, ${clients} client${clients > 1 ? 's' : ''}`;
      rows.push(row(c, 'aggregate throughput', 'MB/s', f('mbps'), { target: { vs: 'nginx', op: '>=', value: 0.8, on: 'ratio' } }));
      rows.push(row(c, 'time to last client done', 's', f('seconds'), { target: { vs: 'nginx', op: '<=', value: 1.25, on: 'ratio' } }));
      const fails = f('failures');
      rows.push(row(c, 'failed clients', 'clients', fails, {
        target: { op: '<=', value: 0, on: 'value' },
        note: `summed over runs: ${(Object.keys(fails) as Server[]).filter((k) => fails[k].length).map((k) => `${k} ${sum(fails[k])}`).join(', ')}`,
      }));
      rows.push(row(c, 'server CPU (user+sys)', 's', f('serverCpuS')));
      rows.push(row(c, 'server run-queue wait', 's', f('runDelayS'), { note: 'runnable, waiting for a CPU; summed over processes' }));
      const cl = f('clientCpuS');
      const wall = f('wallS');
      rows.push(row(c, 'client CPU (all curls)', 's', cl, {
        note: `client CPU / wall: ${(Object.keys(cl) as Server[]).filter((k) => cl[k].length).map((k) => `${k} ${share(cl[k], wall[k])}`).join(', ')}; 100% = one core`,
      }));
      rows.push(row(c, 'machine CPU busy (every process)', 's', f('machineBusyS'), { note: 'of 2 cores x wall; other work on this shared machine included' }));
      if (clients === levels[levels.length - 1]) {
        rows.push(row(c, 'server peak RSS', 'MiB', f('rssMiB'), { note: `Sidereal: ${idleRss.toFixed(0)} MiB before any fetch (bodies go out by sendfile from the page cache: no file is held in the daemon)` }));
      }
    }
    const [curlV, nginxV] = await Promise.all([
      execa('curl', ['--version'], { reject: false }).then((r) => String(r.stdout).split('\n')[0] ?? ''),
      execa('/usr/sbin/nginx', ['-v'], { reject: false }).then((r) => String(r.stderr).trim()),
    ]);
    const mb = (b: number) => (b / 1e6).toFixed(2);
    notes.push(
      `Files: kernel ${realKernel ? REAL_KERNEL : 'random bytes'} (${mb(sizes[0])} MB), initrd ${mb(sizes[1])} MB of random bytes, in one directory served by every server (page cache warm); every client fetches both: ${mb(sizes[0] + sizes[1])} MB per client.`,
      `Transport: veth pair between two namespaces (MTU 1500), servers in one, clients in the other. Runs alternate between the servers (order reversed every other run) after one untimed round of ${opts.quick ? 2 : 8} clients each: ${runs} run(s) per server at ${levels.filter((l) => l > 1).join(', ')} clients, ${opts.runs ?? (opts.quick ? 1 : 15)} with 1 client (a run is ~0.1 s).`,
      'Client: one curl process per node, kernel then initrd on one kept-alive connection (as iPXE), all forked at once by one bash script. Time to last client done = first fork to last exit (the script\'s clock); with 1 client, curl\'s own time for its two transfers (no process start in it). Aggregate = bytes of all clients / that time, 10^6 bytes/s.',
      'Sidereal: `sidereal serve` (DHCP, TFTP and API off, log level info: one line per fetch), GET /files/<name>: headers from Node, the body by sendfile from the page cache on 2 native threads (`http.threads`). nginx: sendfile on, tcp_nopush on, access_log on; `nginx` = worker_processes auto (2 on this machine), the target reference; `nginx-1w` = one worker, for reference only.',
      'Server CPU: utime+stime from /proc over the run (nginx master + workers). Run-queue wait: /proc/PID/schedstat, time runnable but not running. Client CPU: `times` of the script (all curls). RSS: VmRSS sampled every 50 ms, peak per run (nginx: master + workers summed). Machine CPU busy: /proc/stat, every process of this shared machine (other work included).',
      `Versions: ${curlV}; ${nginxV}; node ${process.version}.`,
    );

    return { name: 'http', title: 'HTTP boot: kernel + initrd, Sidereal /files/ vs nginx', rows, notes, raw: { sizes, runs, results: raw } };
  } finally {
    await served?.stop();
    for (const p of nginxes) await stopChild(p);
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function share(cpu: number[], wall: number[]): string {
  const s: Stat = stat(cpu.map((c, i) => c / wall[i]!));
  return `${(s.median * 100).toFixed(0)}%`;
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
  const levels = arg('--clients')?.split(',').map(Number).filter((n) => n >= 1 && n <= 500);
  const runs = arg('--runs') === undefined ? undefined : Math.max(1, Math.min(20, Number(arg('--runs'))));
  await runStandalone(() => run({ quick: process.argv.includes('--quick'), levels, runs, profDir: arg('--prof'),
    servers: arg('--servers')?.split(',').filter((x): x is Server => (ALL_SERVERS as string[]).includes(x)) }));
}
