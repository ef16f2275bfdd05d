/**
 * DHCP full exchanges (issue 6): Sidereal (`sidereal serve` as it ships,
 * leases durable in SQLite) against dnsmasq, both serving a relayed subnet,
 * driven by the same load generator (bench/lib/dhcp-loadgen.ts: a relay
 * agent and many clients, DISCOVER -> OFFER -> REQUEST -> ACK per MAC) run
 * as its own process in a client namespace joined to the server's by a veth.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/dhcp.js [--quick] [--runs 3] [--window 32] [--rate 1000]
 *     [--macs 10000] [--paced-macs 5000] [--only sidereal] [--sidereal-bin OTHER/bin/sidereal.js] [--cpu-prof DIR]
 *
 * Per run and server, on a fresh server: (1) saturation: 10,000 new MACs
 * with a fixed window of exchanges in flight, exchanges/s; (2) latency: a
 * further 5,000 new MACs started at a fixed rate (open loop), DISCOVER sent
 * -> ACK received p50/p99. Each server gets its own namespaces per run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { destroyAll } from '../test/helpers/netns.js';
import { isMain, runStandalone, stat, type Row, type Section } from './lib/report.js';
import { cpuSeconds, rssMiB, stealSeconds } from './lib/proc.js';
import { makeNet, runLoadgen, siderealConfig, startDnsmasq, startSidereal, RELAY_IP, SERVER_IP, type Running } from './lib/dhcp-servers.js';
import type { LoadResult } from './lib/dhcp-loadgen.js';

/** `sidereal-ack-wal`: Sidereal with dhcp.ackAfterFsync false (an ACK once its lease is in the WAL, the fsync after). */
type Server = 'sidereal' | 'sidereal-ack-wal' | 'dnsmasq';
const SERVERS: Server[] = ['sidereal', 'sidereal-ack-wal', 'dnsmasq'];
const REFERENCES: Server[] = ['dnsmasq'];

interface RunFigures { saturation: LoadResult; paced: LoadResult; rssMiB: number; cpuUsPerExchange: { saturation: number; paced: number }; pacedStealSeconds: number }


export interface DhcpBenchOptions {
  quick?: boolean;
  runs?: number;
  window?: number;
  rate?: number;
  macs?: number;
  pacedMacs?: number;
  /** Extra node flags for the daemon (e.g. --cpu-prof). */
  nodeArgs?: string[];
  servers?: Server[];
  /** Another build's bin/sidereal.js to run as "sidereal" (before/after figures). */
  siderealBin?: string;
  /** The saturation phase stops starting exchanges after this many seconds (dnsmasq slows as its lease file grows). */
  capSeconds?: number;
}

async function oneRun(server: Server, o: Required<Omit<DhcpBenchOptions, 'quick'>>, k: number): Promise<RunFigures> {
  const dir = mkdtempSync(join(tmpdir(), `sidereal-bench-dhcp-${server}-`));
  let srv: Running | undefined;
  try {
    const net = await makeNet(`${server[0]}${k}`);
    srv = server === 'dnsmasq'
      ? await startDnsmasq(net, dir)
      : await startSidereal(net, siderealConfig(net, dir, { ackAfterFsync: server === 'sidereal' }), o.nodeArgs, o.siderealBin || undefined);
    const common = { server: SERVER_IP, relay: RELAY_IP, timeoutMs: 1000, retries: 4 };
    const c0 = cpuSeconds([srv.pid]) * 1000;
    const saturation = await runLoadgen(net, { ...common, count: o.macs, macPrefix: 0x10, mode: 'window', window: o.window, deadlineMs: o.capSeconds * 1000 });
    const c1 = cpuSeconds([srv.pid]) * 1000;
    const steal0 = stealSeconds();
    const paced = await runLoadgen(net, { ...common, count: o.pacedMacs, macPrefix: 0x11, mode: 'paced', rate: o.rate, deadlineMs: 30_000 });
    const c2 = cpuSeconds([srv.pid]) * 1000;
    const pacedStealSeconds = stealSeconds() - steal0;
    const rss = rssMiB(srv.pid);
    return {
      saturation, paced, rssMiB: rss, pacedStealSeconds,
      cpuUsPerExchange: { saturation: ((c1 - c0) * 1000) / Math.max(1, saturation.completed), paced: ((c2 - c1) * 1000) / Math.max(1, paced.completed) },
    };
  } finally {
    await srv?.stop();
    await destroyAll();
    if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: DhcpBenchOptions = {}): Promise<Section> {
  const o: Required<Omit<DhcpBenchOptions, 'quick'>> = {
    runs: Math.min(10, opts.runs ?? (opts.quick ? 1 : 3)),
    window: opts.window ?? 32,
    rate: opts.rate ?? 1000,
    macs: Math.min(50_000, opts.macs ?? (opts.quick ? 3000 : 10_000)),
    pacedMacs: Math.min(30_000, opts.pacedMacs ?? (opts.quick ? 2000 : 5000)),
    nodeArgs: opts.nodeArgs ?? [],
    servers: opts.servers ?? SERVERS,
    capSeconds: opts.capSeconds ?? (opts.quick ? 15 : 25),
    siderealBin: opts.siderealBin ?? '',
  };
  const raw: Record<Server, RunFigures[]> = { sidereal: [], 'sidereal-ack-wal': [], dnsmasq: [] };
  try {
    for (let k = 0; k < o.runs; k++) {
      // Alternate the order so neither server always runs on a warmer machine.
      const order = k % 2 === 0 ? o.servers : [...o.servers].reverse();
      for (const s of order) {
        const f = await oneRun(s, o, k);
        raw[s].push(f);
        process.stderr.write(`run ${k + 1}/${o.runs} ${s}: ${f.saturation.exchangesPerSecond.toFixed(0)} exchanges/s (window ${o.window}, ` +
          `CPU ${f.cpuUsPerExchange.saturation.toFixed(0)}/${f.cpuUsPerExchange.paced.toFixed(0)} us per exchange, ` +
          `${f.saturation.completed}/${o.macs} done, ${f.saturation.retransmits} resent, ${f.saturation.failed} failed); ` +
          `paced ${o.rate}/s: p50 ${f.paced.exchange.p50.toFixed(2)} ms, p99 ${f.paced.exchange.p99.toFixed(2)} ms ` +
          `(${f.paced.retransmits} resent, ${f.paced.failed} failed, OFFER p99 ${f.paced.offer.p99.toFixed(2)} ms, ACK p99 ${f.paced.ack.p99.toFixed(2)} ms, host steal ${f.pacedStealSeconds.toFixed(2)} s); RSS ${f.rssMiB.toFixed(0)} MiB\n`);
      }
    }
  } finally {
    await destroyAll();
  }

  const fig = (s: Server, pick: (f: RunFigures) => number) => stat(raw[s].map(pick));
  const others = (pick: (f: RunFigures) => number) =>
    Object.fromEntries(o.servers.filter((s) => REFERENCES.includes(s)).map((s) => [s, fig(s, pick)]));
  const rowOf = (s: Server) => (c: string, metric: string, unit: string, pick: (f: RunFigures) => number, extra: Partial<Row> = {}): Row =>
    ({ case: c, metric, unit, sidereal: fig(s, pick), others: others(pick), ...extra });
  const row = rowOf('sidereal');
  const walRow = rowOf('sidereal-ack-wal');
  const sum = (s: Server, pick: (f: RunFigures) => number) => raw[s].reduce((a, f) => a + pick(f), 0);
  const lossNote = (pick: (f: RunFigures) => LoadResult) =>
    o.servers.map((s) => `${s} ${sum(s, (f) => pick(f).retransmits)} resent, ${sum(s, (f) => pick(f).failed)} failed`).join('; ');

  const satCase = `${o.macs} new MACs (or ${o.capSeconds} s), ${o.window} exchanges in flight`;
  const pacedCase = `${o.pacedMacs} new MACs at ${o.rate}/s open loop (after the ${o.macs})`;
  const rows: Row[] = [
    row(satCase, 'full exchanges (DISCOVER..ACK) per second', 'exchanges/s', (f) => f.saturation.exchangesPerSecond,
      { target: { vs: 'dnsmasq', op: '>=', value: 1.0, on: 'ratio' }, note: lossNote((f) => f.saturation) }),
    row(satCase, 'exchange p99 at saturation', 'ms', (f) => f.saturation.exchange.p99),
    row(pacedCase, 'exchange p50 (DISCOVER sent -> ACK received)', 'ms', (f) => f.paced.exchange.p50),
    row(pacedCase, 'exchange p99 (DISCOVER sent -> ACK received)', 'ms', (f) => f.paced.exchange.p99,
      { target: { op: '<=', value: 5, on: 'value' }, note: lossNote((f) => f.paced) }),
    row(pacedCase, 'OFFER p99 (DISCOVER -> OFFER)', 'ms', (f) => f.paced.offer.p99),
    row(pacedCase, 'ACK p99 (REQUEST -> ACK)', 'ms', (f) => f.paced.ack.p99),
    row(pacedCase, 'CPU time the hypervisor took from the machine during the phase (/proc/stat steal)', 's', (f) => f.pacedStealSeconds),
    row(satCase, 'server CPU time per exchange (user+sys, all threads)', 'µs', (f) => f.cpuUsPerExchange.saturation),
    row(pacedCase, 'server CPU time per exchange (user+sys, all threads)', 'µs', (f) => f.cpuUsPerExchange.paced),
    row(`after the load (up to ${o.macs + o.pacedMacs} leases)`, 'server RSS', 'MiB', (f) => f.rssMiB),
  ];
  // The same phases with dhcp.ackAfterFsync false: what the disk's fsync costs the ACK. No target on these
  // rows: the targets are read on the default, where an ACK waits for its lease's fsync.
  if (o.servers.includes('sidereal-ack-wal')) {
    const wal = ' — dhcp.ackAfterFsync false (ACK once the lease is in the WAL, its fsync after)';
    rows.push(
      walRow(satCase + wal, 'full exchanges (DISCOVER..ACK) per second', 'exchanges/s', (f) => f.saturation.exchangesPerSecond),
      walRow(pacedCase + wal, 'exchange p50 (DISCOVER sent -> ACK received)', 'ms', (f) => f.paced.exchange.p50),
      walRow(pacedCase + wal, 'exchange p99 (DISCOVER sent -> ACK received)', 'ms', (f) => f.paced.exchange.p99),
      walRow(pacedCase + wal, 'OFFER p99 (DISCOVER -> OFFER)', 'ms', (f) => f.paced.offer.p99),
      walRow(pacedCase + wal, 'ACK p99 (REQUEST -> ACK)', 'ms', (f) => f.paced.ack.p99),
      walRow(pacedCase + wal, 'CPU time the hypervisor took from the machine during the phase (/proc/stat steal)', 's', (f) => f.pacedStealSeconds),
    );
  }
  return {
    name: 'dhcp',
    title: 'DHCP: full exchanges through a relay, Sidereal (leases in SQLite, each ACK after its lease\'s fsync) vs dnsmasq',
    rows,
    notes: [
      `load generator: bench/lib/dhcp-loadgen.ts, one node process in a client namespace acting as relay ${RELAY_IP} (giaddr, port 67) for every client; server ${SERVER_IP} in its own namespace over a veth; replies come back to giaddr:67`,
      'packets built and parsed with server/dhcp/packet.ts; each exchange DISCOVER -> OFFER -> REQUEST(50, 54) -> ACK, with options 57, 93 (BIOS), 60 PXEClient, 55',
      'a packet unanswered after 1 s is resent (counted, "resent"); after 4 resends the exchange fails; latency percentiles are over completed exchanges, OFFER/ACK percentiles over exchanges without a resend',
      `saturation phase: starts stop after ${o.capSeconds} s even if not all ${o.macs} MACs were started (dnsmasq rewrites and fsyncs its whole lease file per change, so it slows as leases grow and would take minutes); exchanges/s = completed / time to the last ACK`,
      'server CPU: utime+stime of the server process (all threads) from /proc/PID/stat over the phase, divided by completed exchanges',
      `each server fresh per run (new namespaces, empty lease store); ${o.runs} run(s), order alternating; median (min–max) over runs`,
      'sidereal: `sidereal serve` as it ships (log level info to a file, leases in SQLite, each ACK sent once its lease is fsynced (dhcp.ackAfterFsync true, the default), boot events recorded); the rows marked dhcp.ackAfterFsync false: the same daemon with that key, run in the same rounds; dnsmasq 2.90: --no-daemon --conf-file=/dev/null --port=0 --dhcp-range=<relay subnet pool> --dhcp-lease-max=20000 --dhcp-leasefile --log-facility=- --no-ping (no --log-dhcp)',
      'both servers and the generator share the same 2 CPUs',
    ],
    raw,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean', default: false }, runs: { type: 'string' }, window: { type: 'string' }, rate: { type: 'string' },
    macs: { type: 'string' }, 'paced-macs': { type: 'string' }, 'cpu-prof': { type: 'string' }, only: { type: 'string' },
    'sidereal-bin': { type: 'string' },
  }, strict: false });
  const n = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
  await runStandalone(() => run({
    quick: process.argv.includes('--quick'),
    runs: n(values.runs), window: n(values.window), rate: n(values.rate), macs: n(values.macs), pacedMacs: n(values['paced-macs']),
    nodeArgs: typeof values['cpu-prof'] === 'string' ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : undefined,
    servers: typeof values.only === 'string' ? (values.only.split(',') as Server[]) : undefined,
    siderealBin: typeof values['sidereal-bin'] === 'string' ? values['sidereal-bin'] : undefined,
  }));
}
