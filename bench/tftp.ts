/**
 * TFTP side by side (issue 6): Sidereal's server against tftpd-hpa
 * (/usr/sbin/in.tftpd, one process per transfer) and dnsmasq (one process
 * for every transfer), all three serving the same directory inside a network
 * namespace this script creates (its loopback: nothing touches the host's
 * interfaces) and removes at the end, even on error. Every process it starts
 * is stopped by its PID.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tftp.js [--quick] [--runs 3] [--only REGEX]
 *       [--big-mib 100] [--initrd-mib N (both storms)] [--pin CPU|''] [--storm-pin none|split] [--profile DIR]
 *
 * Matrix (full run, ~6 minutes here):
 * - 1 client, a 100 MiB file: atftp at blksize 512/1468/8192 x windowsize
 *   1/8/16, curl (lock-step only) at the three blksizes. Lock-step rows pin
 *   servers and client to one CPU (see the notes); the references have no
 *   windowsize, so only Sidereal runs the windowed rows, against their
 *   lock-step figure;
 * - 20 and 100 curl clients at once, each fetching an initrd (20 clients
 *   the issue's 60 MiB, 100 clients 10 MiB: see STORM_MIB) at blksize 1468: aggregate MB/s (every byte of
 *   every client / wall time from the first start to the last end), failed
 *   transfers, and the servers' peak RSS (tftpd-hpa: its listener plus every
 *   forked child).
 * Runs alternate between the servers so a slow spell of this shared machine
 * hits all of them alike. Each lock-step run also logs the server's CPU per
 * block (stderr; tftpd-hpa's children are reaped late, so not for it).
 * `--quick`: a 4 MiB file, 1 run, 5 and 20 clients on 2 MiB (~25 s).
 * `--profile DIR`: Sidereal's runner under `node --cpu-prof`.
 *
 * Prints the table and writes bench/results/tftp-<stamp>.json. Needs root
 * (ip netns), curl, atftp, /usr/sbin/in.tftpd and dnsmasq.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat as fsStat, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stopChild } from '../lab/proc.js';
import { createNs, destroyAll, ip, nsExec, nsSpawn } from '../test/helpers/netns.js';
import { DEFAULT_MAX_WINDOW_BYTES, windowCapForBytes } from '../server/tftp/options.js';
import { isMain, runStandalone, stat, type Row, type Section, type Stat } from './lib/report.js';
import { processTree, rssMiB, treeCpuSeconds } from './lib/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ADDR = '127.0.0.1';
const PORTS = { sidereal: 6969, 'tftpd-hpa': 7069, dnsmasq: 69 } as const;
type ServerName = keyof typeof PORTS;
const SERVERS: ServerName[] = ['sidereal', 'tftpd-hpa', 'dnsmasq'];
/** Scratch for atftp's output (it cannot write to a pipe); tmpfs keeps disk speed out of the figures. */
const SCRATCH = '/dev/shm';
const MiB = 1024 * 1024;
/**
 * Size of the 100-client storm's initrd. The issue's 60 MiB would make one
 * 100-client run last over a minute on this 2-core machine (aggregate 50-100
 * MB/s), 10-20 minutes for the 9 runs; `--initrd-mib 60` measures it at that size.
 */
const STORM_MIB = 10;
/**
 * 20 clients fetch the issue's 60 MiB initrd: with 10 MiB a run lasted ~2 s, and one stall of
 * this shared machine moved the figure by 10%; at 60 MiB a run lasts ~12 s here (~2 minutes for the 9).
 */
const ISSUE_INITRD_MIB = 60;

interface SingleCase { kind: 'single'; client: 'curl' | 'atftp'; blksize: number; windowsize: number }
interface StormCase { kind: 'storm'; clients: number; blksize: number; initrdMiB: number }
type Case = SingleCase | StormCase;

export interface TftpBenchOptions {
  quick?: boolean;
  /** Runs per figure (default 3, quick 1). */
  runs?: number;
  /** Only the cases whose name matches. */
  only?: RegExp;
  /** Run Sidereal's runner under `node --cpu-prof` and write the profile here. */
  profileDir?: string;
  /** Override the file sizes (MiB). */
  bigMiB?: number;
  /** Sidereal's pump threads (tftp.threads); default the server's default. */
  threads?: number;
  initrdMiB?: number;
  /**
   * CPU the single-client rows run on, servers and client alike (taskset);
   * '' to leave them to the scheduler. Default '1'. Storms always run unpinned.
   */
  pinCpu?: string;
  /** Storm placement: 'none' (default) the scheduler decides; 'split' servers on CPU 0, clients on the others (experiment: it starved the single-threaded servers here). */
  stormPin?: 'split' | 'none';
}

function caseName(c: Case): string {
  if (c.kind === 'storm') return `${c.clients} curl clients at once, ${c.initrdMiB} MiB initrd, blksize ${c.blksize}`;
  return c.client === 'curl' ? `curl blksize ${c.blksize}` : `atftp blksize ${c.blksize} windowsize ${c.windowsize}`;
}

/** `initrdMiB`: one size for every storm (--initrd-mib); by default 20 clients take the issue's size, 100 clients STORM_MIB. */
function matrix(quick: boolean, initrdMiB?: number): Case[] {
  const cases: Case[] = [];
  for (const blksize of [512, 1468, 8192]) {
    for (const windowsize of [1, 8, 16]) cases.push({ kind: 'single', client: 'atftp', blksize, windowsize });
  }
  for (const blksize of [512, 1468, 8192]) cases.push({ kind: 'single', client: 'curl', blksize, windowsize: 1 });
  const storms: Array<[number, number]> = quick ? [[5, 2], [20, 2]] : [[20, ISSUE_INITRD_MIB], [100, STORM_MIB]];
  for (const [clients, mib] of storms) cases.push({ kind: 'storm', clients, blksize: 1468, initrdMiB: initrdMiB ?? mib });
  return cases;
}

/** Which servers are measured in a case: the references have no windowsize, so their lock-step figure (same client, same blksize) stands for the windowed rows. */
function serversFor(c: Case): ServerName[] {
  return c.kind === 'single' && c.windowsize > 1 ? ['sidereal'] : SERVERS;
}

interface Lab {
  ns: string;
  /** Prefix for client commands (taskset when pinning). */
  wrap(cmd: string, args: string[]): [string, string[]];
  /** Pin the servers (and what they fork from now on) to a CPU list, clients to another ('' for every CPU). */
  pin(servers: string, clients?: string): Promise<void>;
  dir: string;
  bigSize: number;
  pids: Record<ServerName, number>;
}

/** Wait for a line on stdout matching `re`, bounded. */
function waitFor(p: ResultPromise, re: RegExp, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms: ${buf}`)), ms);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) { clearTimeout(t); resolve(); }
    });
    p.then((r) => { clearTimeout(t); reject(new Error(`${what} exited (${r.exitCode}): ${String(r.stderr ?? '')}`)); }, () => {});
  });
}

/** tftpd-hpa and dnsmasq say nothing useful when ready: poll with a tiny file until they answer (bounded). */
async function waitForTftp(ns: string, port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await nsExec(ns, 'curl', ['-sS', '--max-time', '2', '-o', '/dev/null', `tftp://${ADDR}:${port}/ready.txt`], { reject: false });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`nothing answers TFTP on ${ADDR}:${port}`);
}

const curlArgs = (port: number, file: string, blksize: number, timeoutS: number) => [
  '-sS', '--max-time', String(timeoutS), '--tftp-blksize', String(blksize), '-o', '/dev/null', '-w', '%{size_download}',
  `tftp://${ADDR}:${port}/${file}`,
];

/** One single-client transfer of big.bin; seconds, or throws when it failed. */
async function fetchOnce(lab: Lab, c: SingleCase, server: ServerName): Promise<number> {
  const port = PORTS[server];
  const timeoutMs = 300_000;
  const t0 = process.hrtime.bigint();
  if (c.client === 'curl') {
    const r = await nsExec(lab.ns, ...lab.wrap('curl', curlArgs(port, 'big.bin', c.blksize, timeoutMs / 1000)), { reject: false, timeout: timeoutMs + 5000 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.exitCode !== 0 || Number(r.stdout) !== lab.bigSize) throw new Error(`${caseName(c)} on ${server}: exit ${r.exitCode}, ${r.stdout} bytes, ${r.stderr}`);
    return secs;
  }
  const out = path.join(SCRATCH, `sidereal-bench-${process.pid}.out`);
  try {
    const opts = ['--option', `blksize ${c.blksize}`, '--option', 'tsize 0', '--option', `windowsize ${c.windowsize}`];
    const r = await nsExec(lab.ns, ...lab.wrap('atftp', ['--get', '-r', 'big.bin', '-l', out, ...opts, ADDR, String(port)]), { reject: false, timeout: timeoutMs });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const size = await fsStat(out).then((s) => s.size, () => -1);
    if (r.exitCode !== 0 || size !== lab.bigSize) throw new Error(`${caseName(c)} on ${server}: exit ${r.exitCode}, ${size} bytes, ${r.stdout}${r.stderr}`);
    return secs;
  } finally {
    await rm(out, { force: true });
  }
}

/** Peak of the summed RSS of a server's process tree, the tree re-read at every sample (bounded: stops itself). */
function sampleTreeRss(root: number, everyMs = 100, maxMs = 10 * 60_000): { stop(): { peakMiB: number; peakProcs: number } } {
  let peakMiB = 0;
  let peakProcs = 0;
  const take = () => {
    const tree = processTree(root);
    const sum = tree.reduce((a, p) => a + (rssMiB(p) || 0), 0);
    if (sum > peakMiB) peakMiB = sum;
    if (tree.length > peakProcs) peakProcs = tree.length;
  };
  take();
  const timer = setInterval(take, everyMs);
  const end = setTimeout(() => clearInterval(timer), maxMs);
  timer.unref();
  end.unref();
  return { stop() { take(); clearInterval(timer); clearTimeout(end); return { peakMiB, peakProcs }; } };
}

interface StormRun { seconds: number; mbps: number; failed: number; peakRssMiB: number; peakProcs: number; cpuSeconds: number; errors: string[] }

/** N curl clients at once, all started from one shell in the namespace (one `ip netns exec`, not N). */
async function stormOnce(lab: Lab, c: StormCase, server: ServerName): Promise<StormRun> {
  const port = PORTS[server];
  const timeoutS = 600;
  const size = initrdBytes(c);
  const args = curlArgs(port, initrdName(c), c.blksize, timeoutS).map((a) => `'${a}'`).join(' ');
  // Each client prints "<exit code> <bytes>"; `wait` collects them all. Bounded by curl's --max-time.
  const script = `for i in $(seq ${c.clients}); do ( r=$(curl ${args} 2>&1); echo "$? $r" ) & done; wait`;
  const rss = sampleTreeRss(lab.pids[server]);
  const cpu0 = treeCpuSeconds(lab.pids[server]);
  const t0 = process.hrtime.bigint();
  const r = await nsExec(lab.ns, ...lab.wrap('sh', ['-c', script]), { reject: false, timeout: (timeoutS + 30) * 1000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = rss.stop();
  const cpuSeconds = treeCpuSeconds(lab.pids[server]) - cpu0;
  const lines = String(r.stdout ?? '').split('\n').filter(Boolean);
  let ok = 0;
  const errors: string[] = [];
  for (const l of lines) {
    const [code, bytes] = l.split(' ');
    if (code === '0' && Number(bytes) === size) ok++;
    else if (errors.length < 5) errors.push(l);
  }
  const failed = c.clients - ok;
  return { seconds, mbps: (ok * size) / seconds / 1e6, failed, peakRssMiB: peak.peakMiB, peakProcs: peak.peakProcs, cpuSeconds, errors };
}

const initrdName = (c: StormCase) => `initrd-${c.initrdMiB}.img`;
const initrdBytes = (c: StormCase) => Math.round(c.initrdMiB * MiB);

async function writeRandom(file: string, size: number): Promise<void> {
  const parts: Buffer[] = [];
  for (let left = size; left > 0; left -= MiB) parts.push(randomBytes(Math.min(left, MiB)));
  await writeFile(file, Buffer.concat(parts), { mode: 0o644 });
}

export async function run(opts: TftpBenchOptions = {}): Promise<Section> {
  const quick = opts.quick ?? false;
  const runs = Math.max(1, Math.min(20, opts.runs ?? (quick ? 1 : 3)));
  const bigSize = Math.round((opts.bigMiB ?? (quick ? 4 : 100)) * MiB);
  const cases = matrix(quick, opts.initrdMiB).filter((c) => !opts.only || opts.only.test(caseName(c)));
  const storms = cases.filter((c): c is StormCase => c.kind === 'storm');
  const dir = await mkdtemp(path.join(tmpdir(), 'sidereal-bench-tftp-'));
  const started: ResultPromise[] = [];
  const log = (s: string) => process.stderr.write(s + '\n');
  try {
    // in.tftpd and dnsmasq drop to user nobody: the tree must be world-readable.
    await chmod(dir, 0o755);
    await writeRandom(path.join(dir, 'big.bin'), bigSize);
    for (const c of storms) if (!existsSync(path.join(dir, initrdName(c)))) await writeRandom(path.join(dir, initrdName(c)), initrdBytes(c));
    await writeFile(path.join(dir, 'ready.txt'), 'ok\n', { mode: 0o644 });

    const ns = await createNs('tftpb');
    // in.tftpd resolves its -a address with AI_ADDRCONFIG, which fails when
    // the only IPv4 address is on lo (exit 66): give the namespace one more,
    // on a veth pair whose both ends stay in the namespace.
    await ip('-n', ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
    await ip('-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'bench0');
    await ip('-n', ns, 'link', 'set', 'bench0', 'up');
    await ip('-n', ns, 'link', 'set', 'bench1', 'up');

    const nodeArgs: string[] = [];
    if (opts.profileDir) {
      await mkdir(opts.profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', opts.profileDir);
    }
    const ours = nsSpawn(ns, process.execPath, [...nodeArgs, path.join(here, 'tftp-runner.js'), '--root', dir, '--address', ADDR, '--port', String(PORTS.sidereal),
      ...(opts.threads ? ['--threads', String(opts.threads)] : [])],
      { env: { SIDEREAL_LOG_LEVEL: 'warn' }, buffer: false, stdout: 'pipe', stderr: 'inherit' });
    started.push(ours);
    await waitFor(ours, /READY \d+/, 20_000, 'sidereal tftp-runner');
    const hpa = nsSpawn(ns, '/usr/sbin/in.tftpd', ['-L', '-s', dir, '-a', `${ADDR}:${PORTS['tftpd-hpa']}`], { stdout: 'ignore', stderr: 'inherit' });
    started.push(hpa);
    const maxClients = Math.max(1, ...cases.map((c) => (c.kind === 'storm' ? c.clients : 1)));
    const tftpMax = Math.max(50, maxClients * 2);
    const dnsmasqArgs = ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${dir}`, `--tftp-max=${tftpMax}`,
      `--listen-address=${ADDR}`, '--bind-interfaces', '--quiet-tftp', `--pid-file=${path.join(dir, 'dnsmasq.pid')}`, '--log-facility=-'];
    const dm = nsSpawn(ns, 'dnsmasq', dnsmasqArgs, { stdout: 'ignore', stderr: 'ignore' });
    started.push(dm);
    await waitForTftp(ns, PORTS['tftpd-hpa']);
    await waitForTftp(ns, PORTS.dnsmasq);
    const allCpus = `0-${cpus().length - 1}`;
    let clientCpus = '';
    const pin = async (list: string, clients = list) => {
      for (const p of [ours.pid!, hpa.pid!, dm.pid!]) await execa('taskset', ['-a', '-p', '-c', list || allCpus, String(p)], { stdout: 'ignore' });
      clientCpus = clients;
    };
    const split = opts.stormPin === 'split' && cpus().length > 1;
    const wrap = (cmd: string, args: string[]): [string, string[]] => (clientCpus ? ['taskset', ['-c', clientCpus, cmd, ...args]] : [cmd, args]);
    const pinCpu = opts.pinCpu ?? (cpus().length > 1 ? '1' : '');
    const lab: Lab = { ns, wrap, pin, dir, bigSize, pids: { sidereal: ours.pid!, 'tftpd-hpa': hpa.pid!, dnsmasq: dm.pid! } };

    const rows: Row[] = [];
    const raw: Record<string, unknown> = {};
    /** Lock-step figures of the references, by client and blksize, for the windowed rows. */
    const lockstep = new Map<string, Partial<Record<ServerName, Stat>>>();
    for (const c of cases) {
      const name = caseName(c);
      const servers = serversFor(c);
      // Lock-step rows pinned (stable, and the references' best case); windowed rows free: a window's gain is the server filling it while the client drains, on two CPUs.
      if (c.kind === 'storm') await lab.pin(split ? '0' : '', split ? `1-${cpus().length - 1}` : '');
      else await lab.pin(c.windowsize === 1 ? pinCpu : '');
      if (c.kind === 'single') {
        const secs = new Map<ServerName, number[]>(servers.map((s) => [s, []]));
        const cpu = new Map<ServerName, number[]>(servers.map((s) => [s, []]));
        for (let i = 0; i < runs; i++) {
          for (const s of servers) {
            const c0 = treeCpuSeconds(lab.pids[s]);
            secs.get(s)!.push(await fetchOnce(lab, c, s));
            cpu.get(s)!.push(treeCpuSeconds(lab.pids[s]) - c0);
          }
        }
        const blocks = Math.floor(bigSize / c.blksize) + 1;
        for (const s of servers.filter((x) => x !== 'tftpd-hpa')) log(`${name} ${s}: server CPU ${cpu.get(s)!.map((x) => ((x / blocks) * 1e6).toFixed(1)).join(' ')} us/block`);
        const mb = (s: ServerName) => secs.get(s)!.map((x) => bigSize / x / 1e6);
        for (const s of servers) log(`${name} ${s}: ${mb(s).map((r) => r.toFixed(1)).join(' ')} MB/s`);
        raw[name] = Object.fromEntries(servers.map((s) => [s, { seconds: secs.get(s), mbps: mb(s) }]));
        const key = `${c.client} ${c.blksize}`;
        let others: Record<string, Stat> = {};
        let note: string | undefined;
        if (c.windowsize === 1) {
          others = { 'tftpd-hpa': stat(mb('tftpd-hpa')), dnsmasq: stat(mb('dnsmasq')) };
          lockstep.set(key, others);
        } else {
          others = { ...(lockstep.get(key) ?? {}) } as Record<string, Stat>;
          note = 'references: their lock-step figure (no windowsize)';
          const capped = windowCapForBytes(c.blksize, DEFAULT_MAX_WINDOW_BYTES);
          if (capped < c.windowsize) note += `; Sidereal answers windowsize ${capped} (a ${c.windowsize}-block window of ${c.blksize}-byte blocks overflows the client's default receive buffer)`;
        }
        const row: Row = {
          case: name, metric: 'throughput', unit: 'MB/s', sidereal: stat(mb('sidereal')), others,
          target: c.windowsize >= 8 ? { vs: 'tftpd-hpa', op: '>=', value: 1.2, on: 'ratio' } : { vs: 'tftpd-hpa', op: '>=', value: 0.9, on: 'ratio' },
        };
        if (note) row.note = note;
        rows.push(row);
      } else {
        const res = new Map<ServerName, StormRun[]>(servers.map((s) => [s, []]));
        for (let i = 0; i < runs; i++) {
          for (const s of servers) {
            const r = await stormOnce(lab, c, s);
            res.get(s)!.push(r);
            log(`${name} ${s}: ${r.mbps.toFixed(1)} MB/s, ${r.failed} failed, peak RSS ${r.peakRssMiB.toFixed(1)} MiB over ${r.peakProcs} process(es), server CPU ${r.cpuSeconds.toFixed(2)} s in ${r.seconds.toFixed(2)} s${r.errors.length ? ' ' + JSON.stringify(r.errors) : ''}`);
          }
        }
        raw[name] = Object.fromEntries(servers.map((s) => [s, res.get(s)]));
        const of = (s: ServerName, f: (r: StormRun) => number) => stat(res.get(s)!.map(f));
        const others = (f: (r: StormRun) => number) => ({ 'tftpd-hpa': of('tftpd-hpa', f), dnsmasq: of('dnsmasq', f) });
        const failNote = servers.map((s) => `${s} ${res.get(s)!.reduce((a, r) => a + r.failed, 0)}`).join(', ');
        rows.push({
          case: name, metric: 'aggregate throughput', unit: 'MB/s', sidereal: of('sidereal', (r) => r.mbps), others: others((r) => r.mbps),
          target: { vs: 'tftpd-hpa', op: '>=', value: 1.0, on: 'ratio' }, note: `failed transfers over all runs: ${failNote}`,
        });
        rows.push({
          case: name, metric: 'failed transfers', unit: 'count', sidereal: of('sidereal', (r) => r.failed), others: others((r) => r.failed),
          target: { op: '<=', value: 0, on: 'value' },
        });
        rows.push({
          case: name, metric: 'peak RSS', unit: 'MiB', sidereal: of('sidereal', (r) => r.peakRssMiB), others: others((r) => r.peakRssMiB),
          note: 'tftpd-hpa: listener + forked children summed',
        });
      }
    }
    const version = async (cmd: string, args: string[]) => {
      const r = await execa(cmd, args, { reject: false });
      return (r.stdout || r.stderr || '').split('\n')[0]!.trim();
    };
    const notes = [
      `Namespace loopback (${ADDR}, MTU 65536); files in ${tmpdir()} (page cache), atftp writes to ${SCRATCH} (tmpfs), curl to /dev/null.`,
      `Single client: a ${(bigSize / MiB).toFixed(0)} MiB file; storm: each client fetches the initrd its row names (${storms.map((c) => `${c.clients} clients: ${c.initrdMiB} MiB`).join(', ')}; by default 20 clients the issue's ${ISSUE_INITRD_MIB} MiB and 100 clients ${STORM_MIB} MiB, as 100 × 60 MiB would take over a minute a run here), every client started at once from one shell, aggregate = bytes of every successful transfer / wall time from the first start to the last end.`,
      `Lock-step rows (windowsize 1, curl): servers and client pinned to the same CPU (${pinCpu || 'none'}, taskset): on this VM a lock-step ping-pong across the two CPUs pays a cross-CPU wake-up per block and varied 3-fold run to run; same-CPU is also the references' fastest lock-step. Windowed rows (Sidereal only) and storms run unpinned, so the windowed rows compare Sidereal on two CPUs with the references' best lock-step figure.`,
      `${runs} run(s) per figure, servers alternating run by run; MB/s = 10^6 bytes/s; median (min–max).`,
      'tftpd-hpa and dnsmasq do not implement windowsize (RFC 7440): the windowed rows compare Sidereal with their lock-step figure at the same blksize and client; curl has no windowsize option (its rows are lock-step for all three).',
      `dnsmasq runs with --tftp-max=${tftpMax} (its default cap is 50 concurrent transfers, below the 100-client storm), --quiet-tftp, no DNS (--port=0), no DHCP.`,
      'Peak RSS: sampled every 100 ms over the storm; tftpd-hpa forks one process per transfer, its figure is the listener plus all its children summed (shared pages counted in each).',
      `Clients: ${await version('curl', ['--version'])}; ${await version('atftp', ['--version'])}. Servers: ${await version('/usr/sbin/in.tftpd', ['-V'])}; ${await version('dnsmasq', ['--version'])}; Sidereal on node ${process.version}.`,
    ];
    return { name: 'tftp', title: 'TFTP: Sidereal vs tftpd-hpa and dnsmasq', rows, notes, raw };
  } finally {
    for (const p of started.reverse()) await stopChild(p);
    await destroyAll();
    await rm(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'string' },
      'big-mib': { type: 'string' },
      'initrd-mib': { type: 'string' },
      pin: { type: 'string' },
      'storm-pin': { type: 'string' },
      threads: { type: 'string' },
    },
  });
  const o: TftpBenchOptions = { quick: values.quick ?? false };
  if (values.runs) o.runs = Number(values.runs);
  if (values.only) o.only = new RegExp(values.only);
  if (values.profile) o.profileDir = path.resolve(values.profile);
  if (values['big-mib']) o.bigMiB = Number(values['big-mib']);
  if (values['initrd-mib']) o.initrdMiB = Number(values['initrd-mib']);
  if (values.pin !== undefined) o.pinCpu = values.pin;
  if (values['storm-pin'] === 'none' || values['storm-pin'] === 'split') o.stormPin = values['storm-pin'];
  if (values.threads) o.threads = Number(values.threads);
  await runStandalone(() => run(o));
}
