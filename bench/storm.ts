/**
 * Boot storm: N simulated PXE nodes (default 500) start within one second
 * against one server; each does its DHCP exchange, fetches its bootloader,
 * its per-MAC menu (or iPXE script), its kernel and its initrd. Half boot
 * pxelinux over TFTP, half boot iPXE and fetch over HTTP (which half a node
 * is in is the server's answer: its group's loader in Sidereal, a tag in
 * dnsmasq). Measured against Sidereal and against dnsmasq (+ nginx for the
 * HTTP half), storms alternating, with the same client processes.
 *
 *   node dist/bench/storm.js [--quick] [--nodes N] [--runs N] [--kernel-mib N] [--initrd-mib N]
 *   (default files: the lab's real kernel, 7.9 MiB, and its marker initrd, 1.0 MiB; N MiB: random bytes instead)
 *                            [--server sidereal|reference|both] [--client-procs N (default 2)]
 *
 * Layout: a server namespace and a client namespace joined by a veth; the
 * client side holds every node's reserved address. DHCP is broadcast with the
 * broadcast flag set, on one port-68 socket demultiplexed by xid (no relay).
 * Needs root.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, prepareLabAssets, type LabAssets } from '../lab/assets.js';
import { siderealReady } from '../lab/sidereal.js';
import { createNs, destroyAll, linkNamespaces, nsExec } from '../test/helpers/netns.js';
import { isMain, percentile, runStandalone, stat, type Row, type Section } from './lib/report.js';
import { prepareReference, prepareSidereal, type StartedServer, type StormHost, type StormNet } from './lib/storm-servers.js';
import { childPids, cpuSeconds, sampleRss } from './lib/proc.js';
import { PHASES, type NodeResult, type Phase, type StormClientConfig, type StormClientResult, type StormNode } from './lib/storm-client.js';

export interface StormOptions {
  quick?: boolean;
  nodes?: number;
  runs?: number;
  /** Initrd: a random file of this many MiB; default (or 0) the lab's marker initrd (1.0 MiB). */
  initrdMiB?: number;
  /** Kernel: a random file of this many MiB; default (or 0) the lab's real kernel (7.9 MiB). */
  kernelMiB?: number;
  servers?: Array<'sidereal' | 'reference'>;
  /** Client processes the nodes are dealt to (default 2: one is a core's worth of Node, and ran at 100% of it). */
  clientProcs?: number;
  log?: (m: string) => void;
}

/** The storm's nodes dealt to `procs` client processes by pairs, so each gets TFTP (even) and HTTP (odd) nodes alike. */
export function dealNodes<T>(nodes: T[], procs: number): T[][] {
  const out: T[][] = Array.from({ length: procs }, () => []);
  nodes.forEach((n, i) => out[Math.floor(i / 2) % procs]!.push(n));
  return out;
}

/** One storm's result from the results of its client processes. */
export function mergeClientResults(parts: StormClientResult[]): StormClientResult {
  const bySecond: number[] = [];
  for (const p of parts) p.retransmitsBySecond.forEach((x, i) => { bySecond[i] = (bySecond[i] ?? 0) + x; });
  return {
    nodes: parts.flatMap((p) => p.nodes),
    lastMs: Math.max(...parts.map((p) => p.lastMs)),
    cpuMs: { user: parts.reduce((a, p) => a + p.cpuMs.user, 0), system: parts.reduce((a, p) => a + p.cpuMs.system, 0) },
    retransmitsBySecond: Array.from(bySecond, (x) => x ?? 0),
  };
}

type ServerName = 'sidereal' | 'reference';

/** Nodes power on evenly over this long. */
const SPREAD_MS = 1000;
/** The client processes' start, then their storm's limit (a node still running then fails). */
const CLIENT_START_MS = 3000;
const CLIENT_DEADLINE_MS = 240_000;

interface StormRun {
  server: ServerName;
  run: number;
  lastS: number;
  ok: number;
  failed: number;
  errors: string[];
  nodeP50S: number;
  nodeP99S: number;
  /** Last node of each half. */
  lastTftpS: number;
  lastHttpS: number;
  /** Per phase and half: median and p99 of the per-node time (s), and when the last node finished it (s). */
  phases: Record<string, { p50: number; p99: number; lastEnd: number }>;
  dhcpRetransmits: number;
  tftpRetransmits: number;
  serverCpuS: number;
  clientCpuS: number;
  peakRssMiB: number;
  /** TFTP transfers the server itself logged as failed (timeout, peer unreachable, busy...). */
  serverTftpFailures: number;
  /** UDP datagrams the kernel dropped for a full socket buffer during the storm (RcvbufErrors), per namespace. */
  udpDrops: { server: number; client: number };
  /** Seconds of the storm in which the client retransmitted TFTP packets: "second:count". */
  retransmitSeconds: string[];
}

/** Udp RcvbufErrors of a namespace (/proc/net/snmp). */
async function udpRcvbufErrors(ns: string): Promise<number> {
  const r = await nsExec(ns, 'cat', ['/proc/net/snmp'], { reject: false });
  const lines = String(r.stdout).split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return NaN;
  const head = lines[0]!.split(/\s+/);
  const vals = lines[1]!.split(/\s+/);
  return Number(vals[head.indexOf('RcvbufErrors')]);
}

/** Failed TFTP transfers in a server's log: Sidereal's outcome field, dnsmasq's `failed sending`/error lines. */
function serverTftpFailures(logText: string): number {
  let n = 0;
  for (const line of logText.split('\n')) {
    if (line.includes('"svc":"tftp"')) {
      const m = /"outcome":"([^"]+)"/.exec(line);
      if (m && !['ok', 'not-found', 'aborted-probe'].includes(m[1]!)) n++;
    } else if (line.includes('dnsmasq-tftp') && /failed|timeout|error/i.test(line) && !/not found/.test(line)) {
      n++;
    }
  }
  return n;
}

const SERVER_IP = '10.78.0.1';

function nodeAddr(i: number): string {
  return `10.78.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}
function nodeMac(i: number): string {
  return `52:54:00:78:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

async function randomFile(file: string, mib: number): Promise<string> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < mib; i++) chunks.push(randomBytes(1 << 20));
  await writeFile(file, Buffer.concat(chunks));
  return file;
}

function summarize(server: ServerName, run: number, res: StormClientResult, serverCpuS: number, peakRssMiB: number, serverLog: string): StormRun {
  const nodes = res.nodes;
  const ok = nodes.filter((n) => n.ok);
  const totals = nodes.map((n) => (n.end - n.start) / 1000);
  const phases: StormRun['phases'] = {};
  for (const via of ['tftp', 'http'] as const) {
    const half = nodes.filter((n) => n.via === via);
    for (const p of PHASES) {
      const xs = half.map((n) => n.phases[p]).filter((x): x is number => x !== undefined).map((x) => x / 1000);
      const ends = half.map((n) => n.phaseEnd[p]).filter((x): x is number => x !== undefined).map((x) => x / 1000);
      if (xs.length) phases[`${via}.${p}`] = { p50: percentile(xs, 50), p99: percentile(xs, 99), lastEnd: Math.max(...ends) };
    }
  }
  const lastOf = (via: NodeResult['via']) => Math.max(0, ...nodes.filter((n) => n.via === via).map((n) => n.end / 1000));
  const errs = new Map<string, number>();
  for (const n of nodes) if (n.error) errs.set(n.error.replace(/\d+(\.\d+)*/g, '#'), (errs.get(n.error.replace(/\d+(\.\d+)*/g, '#')) ?? 0) + 1);
  return {
    server, run,
    lastS: res.lastMs / 1000,
    ok: ok.length,
    failed: nodes.length - ok.length,
    errors: [...errs].map(([e, c]) => `${c}x ${e}`).slice(0, 10),
    nodeP50S: percentile(totals, 50),
    nodeP99S: percentile(totals, 99),
    lastTftpS: lastOf('tftp'),
    lastHttpS: lastOf('http'),
    phases,
    dhcpRetransmits: nodes.reduce((a, n) => a + n.dhcpRetransmits, 0),
    tftpRetransmits: nodes.reduce((a, n) => a + n.tftpRetransmits, 0),
    serverCpuS,
    clientCpuS: (res.cpuMs.user + res.cpuMs.system) / 1000,
    peakRssMiB,
    serverTftpFailures: serverTftpFailures(serverLog),
    udpDrops: { server: 0, client: 0 },
    retransmitSeconds: (res.retransmitsBySecond ?? []).map((c, i) => (c ? `${i}:${c}` : '')).filter(Boolean),
  };
}

export async function runStorm(o: StormOptions = {}): Promise<{ runs: StormRun[]; notes: string[] }> {
  const log = o.log ?? ((m: string) => process.stdout.write(m + '\n'));
  const nNodes = o.nodes ?? (o.quick ? 100 : 500);
  const runs = o.runs ?? (o.quick ? 1 : 3);
  const initrdMiB = o.initrdMiB ?? 0;
  const kernelMiB = o.kernelMiB ?? 0;
  const servers = o.servers ?? ['sidereal', 'reference'];
  const clientProcs = o.clientProcs ?? 2;
  if (!Number.isInteger(clientProcs) || clientProcs < 1) throw new Error(`--client-procs must be a whole number >= 1, got ${clientProcs}`);
  if (nNodes > 1000) throw new Error('at most 1000 nodes (addresses 10.78.1-4.x)');
  const lab = await prepareLabAssets(defaultCacheDir());
  const work = await mkdtemp(path.join(tmpdir(), 'sidereal-storm-'));
  const results: StormRun[] = [];
  const binBefore = process.env.SIDEREAL_BIN;
  try {
    const assets: LabAssets = {
      kernelVersion: lab.kernelVersion,
      kernel: kernelMiB > 0 ? await randomFile(path.join(work, 'kernel.bin'), kernelMiB) : lab.kernel,
      initrd: initrdMiB > 0 ? await randomFile(path.join(work, 'initrd.bin'), initrdMiB) : lab.initrd,
    };
    const srvNs = await createNs('stsrv');
    const cliNs = await createNs('stcli');
    const { aIf, bIf } = await linkNamespaces(srvNs, `${SERVER_IP}/16`, cliNs, null, 's');
    const batch = Array.from({ length: nNodes }, (_, i) => `addr add ${nodeAddr(i)}/16 dev ${bIf}`).join('\n') + '\n';
    await execa('ip', ['-n', cliNs, '-batch', '-'], { input: batch });
    await execa('ip', ['-n', cliNs, 'route', 'add', 'default', 'dev', bIf]);
    // Room in the neighbour tables for every node (per namespace; best effort).
    for (const ns of [srvNs, cliNs]) {
      await nsExec(ns, 'sysctl', ['-qw', 'net.ipv4.neigh.default.gc_thresh1=2048', 'net.ipv4.neigh.default.gc_thresh2=4096', 'net.ipv4.neigh.default.gc_thresh3=8192'], { reject: false });
    }
    const net: StormNet = {
      ns: srvNs, iface: aIf, serverIp: SERVER_IP, subnet: '10.78.0.0/16', netmask: '255.255.0.0',
      poolStart: '10.78.200.1', poolEnd: '10.78.200.250', httpPort: 8080,
    };
    const hosts: StormHost[] = Array.from({ length: nNodes }, (_, i) => ({
      mac: nodeMac(i), ip: nodeAddr(i), hostname: `node${String(i + 1).padStart(3, '0')}`, http: i % 2 === 1,
    }));
    // Powered on evenly over SPREAD_MS, whichever client process boots them.
    const step = nNodes > 1 ? SPREAD_MS / (nNodes - 1) : 0;
    const nodes: StormNode[] = hosts.map((h, i) => ({ mac: h.mac, ip: h.ip, uuid: randomUuid(i), arch: 0, atMs: Math.round(i * step) }));
    const refOpts = { tftpMax: 2 * nNodes + 100, leaseMax: 2 * nNodes + 100, nginxWorkers: 'auto' };
    const kernelSize = await fileSize(assets.kernel);
    const initrdSize = await fileSize(assets.initrd);
    log(`storm: ${nNodes} nodes, kernel ${(kernelSize / 2 ** 20).toFixed(1)} MiB, initrd ${(initrdSize / 2 ** 20).toFixed(1)} MiB, ${runs} run(s) per server`);
    const sid = servers.includes('sidereal') ? await prepareSidereal(path.join(work, 'sidereal'), net, assets, hosts) : undefined;
    const ref = servers.includes('reference') ? await prepareReference(path.join(work, 'reference'), net, assets, hosts, refOpts) : undefined;
    const clientCfg = (share: StormNode[], startAtMs: number): StormClientConfig => ({
      server: SERVER_IP, httpPort: net.httpPort, nodes: share, startAtMs, deadlineMs: CLIENT_DEADLINE_MS,
      pxeDhcpSchedule: [4, 8, 16, 32], ipxeDhcpSchedule: [1, 2, 4, 8, 16],
      tftpSchedule: [1000, 2000, 4000, 8000, 8000, 8000], httpTimeoutMs: 180_000,
    });
    const shares = dealNodes(nodes, clientProcs);
    const clientJs = new URL('./lib/storm-client.js', import.meta.url).pathname;

    for (let run = 1; run <= runs; run++) {
      for (const server of servers) {
        const logDir = path.join(work, `${server}-${run}`);
        await mkdir(logDir, { recursive: true });
        const started: StartedServer = server === 'sidereal' ? await sid!.start(path.join(logDir, 'sidereal.log')) : await ref!.start(logDir);
        let res: StormClientResult;
        let cpu = 0;
        let rss = 0;
        let drops0 = [0, 0];
        let drops1 = [0, 0];
        try {
          const pids = () => started.procs.flatMap((p) => [p.pid, ...childPids(p.pid)]);
          const cpu0 = cpuSeconds(pids());
          drops0 = [await udpRcvbufErrors(srvNs), await udpRcvbufErrors(cliNs)];
          const sampler = sampleRss(pids(), 100, 300_000);
          // Every client process starts the storm on one instant, once all have started and opened their sockets.
          const startAtMs = Date.now() + CLIENT_START_MS;
          const files = await Promise.all(shares.map(async (share, k) => {
            const f = path.join(logDir, `client-${k}.json`);
            await writeFile(f, JSON.stringify(clientCfg(share, startAtMs)));
            return f;
          }));
          const rs = await Promise.all(files.map((f) => nsExec(cliNs, process.execPath, [clientJs, f], { reject: false, timeout: CLIENT_START_MS + CLIENT_DEADLINE_MS + 60_000 })));
          rss = sampler.stop();
          drops1 = [await udpRcvbufErrors(srvNs), await udpRcvbufErrors(cliNs)];
          cpu = cpuSeconds(pids()) - cpu0;
          const bad = rs.find((r) => r.exitCode !== 0);
          if (bad) throw new Error(`storm client failed (exit ${bad.exitCode}): ${String(bad.stderr).slice(-2000)}`);
          res = mergeClientResults(rs.map((r) => JSON.parse(String(r.stdout).trim().split('\n').pop()!) as StormClientResult));
        } finally {
          await started.stop();
        }
        const serverLog = started.procs.map((p) => readFileSync(p.logFile, 'utf8')).join('\n');
        const s = summarize(server, run, res, cpu, rss, serverLog);
        s.udpDrops = { server: drops1[0]! - drops0[0]!, client: drops1[1]! - drops0[1]! };
        results.push(s);
        log(`${server.padEnd(9)} run ${run}: last node ${s.lastS.toFixed(2)} s (tftp half ${s.lastTftpS.toFixed(2)}, http half ${s.lastHttpS.toFixed(2)}), ` +
          `${s.ok}/${nNodes} ok, node p50 ${s.nodeP50S.toFixed(2)} s p99 ${s.nodeP99S.toFixed(2)} s, ` +
          `retransmits dhcp ${s.dhcpRetransmits} tftp ${s.tftpRetransmits}, server tftp failures ${s.serverTftpFailures}, udp drops srv ${s.udpDrops.server} cli ${s.udpDrops.client}, server cpu ${s.serverCpuS.toFixed(1)} s, client cpu ${s.clientCpuS.toFixed(1)} s, rss ${s.peakRssMiB.toFixed(0)} MiB` +
          (s.errors.length ? `\n  errors: ${s.errors.join('; ')}` : ''));
        if (s.retransmitSeconds.length) log(`  client TFTP retransmits by second of the storm: ${s.retransmitSeconds.join(' ')}`);
        log('  phases (p50/p99 per node, last end), s: ' + Object.entries(s.phases)
          .map(([k, v]) => `${k} ${v.p50.toFixed(2)}/${v.p99.toFixed(2)} @${v.lastEnd.toFixed(1)}`).join(', '));
      }
    }
    const notes = [
      `${nNodes} simulated BIOS PXE nodes (option 93 = 0, 94, 97 UUID, 60 PXEClient), started evenly over 1 s, dealt by pairs to ${clientProcs} client processes (Node; they start the storm on one instant) in a client namespace joined to the server namespace by a veth; every node's reserved address is on the client side of the veth.`,
      'DHCP: broadcast with the broadcast flag set, one shared socket on port 68 demultiplexed by xid (no relay); PXE ROM retransmits at 4, 8, 16, 32 s, iPXE at 1, 2, 4, 8, 16 s.',
      `TFTP half (even nodes, pxelinux): pxelinux.0 (blksize 1456 + tsize, as the ROM), ldlinux.c32, pxelinux.cfg/<uuid> (not found), pxelinux.cfg/01-<mac>, kernel, initrd: lock-step, blksize 1408 + tsize, ACK timeouts 1, 2, 4, 8, 8, 8 s.`,
      'HTTP half (odd nodes, iPXE): undionly.kpxe over TFTP, a second DHCP as iPXE (77 iPXE, 175), the per-MAC script over HTTP, kernel and initrd over HTTP (a connection per file, as iPXE).',
      `Files: kernel ${kernelMiB > 0 ? `${kernelMiB} MiB of random bytes` : `the lab's real vmlinuz ${lab.kernelVersion}`} (${(kernelSize / 2 ** 20).toFixed(1)} MiB), ` +
        `initrd ${initrdMiB > 0 ? `${initrdMiB} MiB of random bytes` : 'the lab\'s marker initrd'} (${(initrdSize / 2 ** 20).toFixed(1)} MiB): the files the QEMU storm boots. ` +
        `A 16 MiB initrd would make each storm ~3x longer (250 nodes x 24 MB of lock-step TFTP = 6 GB): --initrd-mib 16 runs it.`,
      `Reference: dnsmasq ${'(DHCP + TFTP)'} with --tftp-max=${refOpts.tftpMax} (its default is 50, too few for a storm), --dhcp-lease-max=${refOpts.leaseMax}, a dhcp-host per node, per-MAC menus in pxelinux.cfg/ on disk, per-node iPXE script URLs (dhcp-boot by host tag); nginx 1.22 (worker_processes ${refOpts.nginxWorkers}, sendfile) serves the scripts and /files/ for the HTTP half.`,
      'Sidereal: `sidereal serve` with the nodes imported from a CSV (machine import), a pxelinux group and an ipxe group; log level info (dnsmasq logs its default lines too). Each storm starts a fresh server process; storms alternate Sidereal / reference.',
      'Time to last node: from the first node\'s start until the last node has its initrd. Per-node time: its own start to its initrd. Server CPU: user+system seconds of the server processes over the storm (dnsmasq + nginx for the reference).',
      `The 2 cores are shared by the servers, the client processes and other jobs on this machine: the clients themselves cost CPU during the storm (client CPU in the raw figures). One client process ran at 100% of a core for the whole storm with either server, so it measured itself: hence ${clientProcs}.`,
    ];
    return { runs: results, notes };
  } finally {
    await destroyAll();
    if (binBefore === undefined) delete process.env.SIDEREAL_BIN;
    else process.env.SIDEREAL_BIN = binBefore;
    if (process.env.STORM_KEEP) log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

function randomUuid(i: number): string {
  return Buffer.concat([Buffer.from('5ede7ea1', 'hex'), Buffer.from(i.toString(16).padStart(24, '0'), 'hex')]).toString('hex');
}

async function fileSize(f: string): Promise<number> {
  const { stat: st } = await import('node:fs/promises');
  return (await st(f)).size;
}

export async function run(opts: { quick?: boolean } & StormOptions = {}): Promise<Section> {
  if (process.getuid?.() !== 0) throw new Error('bench/storm needs root (network namespaces)');
  if (!(await siderealReady())) throw new Error('node bin/sidereal.js --help fails: build Sidereal first');
  const { runs, notes } = await runStorm(opts);
  const by = (s: ServerName) => runs.filter((r) => r.server === s);
  const S = by('sidereal');
  const R = by('reference');
  const n = opts.nodes ?? (opts.quick ? 100 : 500);
  const row = (c: string, metric: string, unit: string, f: (r: StormRun) => number, target?: Row['target'], note?: string): Row => ({
    case: c, metric, unit, sidereal: stat(S.map(f)), others: R.length ? { dnsmasq: stat(R.map(f)) } : {},
    ...(target ? { target } : {}), ...(note ? { note } : {}),
  });
  const failures = (rs: StormRun[]) => rs.reduce((a, r) => a + r.failed, 0);
  const rows: Row[] = [
    row(`${n} nodes, half TFTP half HTTP`, 'time to last node', 's', (r) => r.lastS, { vs: 'dnsmasq', op: '<=', value: 1.0, on: 'ratio' },
      `failures: Sidereal ${failures(S)}, dnsmasq ${failures(R)} over all storms`),
    row(`${n} nodes`, 'nodes served', 'nodes', (r) => r.ok, { op: '>=', value: n, on: 'value' }),
    row(`${n} nodes`, 'per-node time p50', 's', (r) => r.nodeP50S),
    row(`${n} nodes`, 'per-node time p99', 's', (r) => r.nodeP99S),
    row('TFTP half (pxelinux)', 'time to last node', 's', (r) => r.lastTftpS),
    row('HTTP half (iPXE; nginx for the reference)', 'time to last node', 's', (r) => r.lastHttpS),
  ];
  const phaseNames: Record<Phase, string> = { dhcp: 'DHCP', bootloader: 'bootloader', menu: 'menu/script', kernel: 'kernel', initrd: 'initrd' };
  for (const via of ['tftp', 'http'] as const) {
    for (const p of PHASES) {
      const key = `${via}.${p}`;
      if (!S.concat(R).some((r) => r.phases[key])) continue;
      rows.push(row(`${via.toUpperCase()} half: ${phaseNames[p]}`, 'per-node time p50', 's', (r) => r.phases[key]?.p50 ?? NaN));
    }
  }
  rows.push(
    row(`${n} nodes`, 'DHCP retransmits', 'packets', (r) => r.dhcpRetransmits),
    row(`${n} nodes`, 'TFTP retransmits (client)', 'packets', (r) => r.tftpRetransmits),
    row(`${n} nodes`, 'TFTP transfers failed (server log)', 'transfers', (r) => r.serverTftpFailures),
    row(`${n} nodes`, 'UDP drops, full socket buffer (server ns)', 'datagrams', (r) => r.udpDrops.server),
    row(`${n} nodes`, 'UDP drops, full socket buffer (client ns)', 'datagrams', (r) => r.udpDrops.client),
    row(`${n} nodes`, 'server CPU', 's', (r) => r.serverCpuS, undefined, 'reference: dnsmasq + nginx'),
    row(`${n} nodes`, 'server peak RSS', 'MiB', (r) => r.peakRssMiB, undefined, 'reference: dnsmasq + nginx'),
  );
  return { name: 'storm', title: `Boot storm: ${n} simulated PXE nodes within 1 s`, rows, notes, raw: runs };
}

/** Options from the command line besides --quick. */
function cliOptions(): StormOptions {
  const { values } = parseArgs({
    strict: false,
    options: {
      nodes: { type: 'string' },
      runs: { type: 'string' },
      'initrd-mib': { type: 'string' },
      'kernel-mib': { type: 'string' },
      server: { type: 'string', default: 'both' },
      'client-procs': { type: 'string' },
    },
  });
  const num = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
  const servers: ServerName[] = values.server === 'both' ? ['sidereal', 'reference'] : [values.server as ServerName];
  const onSignal = () => { void destroyAll().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { nodes: num(values.nodes), runs: num(values.runs), initrdMiB: num(values['initrd-mib']), kernelMiB: num(values['kernel-mib']), servers, clientProcs: num(values['client-procs']) };
}

if (isMain(import.meta.url)) await runStandalone(() => run({ quick: process.argv.includes('--quick'), ...cliOptions() }));
