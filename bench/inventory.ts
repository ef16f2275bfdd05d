/**
 * Inventory at scale (issue 6): with 10,000 machines registered (each with a
 * fixed address in the relayed subnet and a host name, imported through the
 * inventory module as `sidereal import` does, before `serve` starts):
 *   - DHCP reply time for registered MACs (full exchanges at a paced rate,
 *     the load generator of bench/dhcp.ts acting as a relay), the first
 *     --cold-machines of them from the daemon's start, reported apart;
 *   - per-MAC boot menu render time over HTTP: /boot/<mac>.ipxe and
 *     /files/pxelinux.cfg/01-<mac> (the pxelinux menu TFTP serves too);
 *   - GET /api/v1/machines, every page (1,000 a page) of the 10,000;
 *   - the daemon's RSS, idle after start and after the load.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/inventory.js [--quick] [--runs 3] [--machines 10000] [--rate 1000]
 *     [--samples 1000] [--cold-machines 1000] [--sidereal-bin OTHER/bin/sidereal.js] [--cpu-prof DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { destroyAll, nsExec } from '../test/helpers/netns.js';
import { cli, repoRoot } from '../test/helpers/serve.js';
import { loadConfig } from '../server/config/config.js';
import { Inventory } from '../server/inventory/index.js';
import { networkPolicy } from '../server/daemon/network.js';
import { prepareImport, applyImport } from '../server/import/index.js';
import { fromInt, toInt } from '../server/net/ipv4.js';
import { isMain, runStandalone, stat, type Row, type Section } from './lib/report.js';
import { cpuSeconds, rssMiB, stealSeconds } from './lib/proc.js';
import { macFor, type LoadResult } from './lib/dhcp-loadgen.js';
import type { MenuResult } from './lib/dhcp-inventory-client.js';
import { makeNet, runLoadgen, siderealConfig, startSidereal, RELAY_IP, SERVER_IP, type Running } from './lib/dhcp-servers.js';

const PREFIX = 0x20;
/** Fixed addresses from here (below the bench's pool, which starts at 10.90.200.1 in this bench). */
const FIRST_FIXED = '10.90.1.1';
const POOL = { start: '10.90.200.1', end: '10.90.255.250' };
const clientJs = join(repoRoot, 'dist', 'bench', 'lib', 'dhcp-inventory-client.js');

interface RunFigures { importSeconds: number; idleRssMiB: number; coldDhcp: LoadResult; dhcp: LoadResult; dhcpCpuUs: number; dhcpStealSeconds: number; menus: MenuResult; rssMiB: number }


export interface InventoryBenchOptions {
  quick?: boolean; runs?: number; machines?: number; rate?: number; samples?: number; nodeArgs?: string[];
  /**
   * The first this many registered MACs boot right after the daemon starts
   * (cold: code not compiled yet, the machine table not yet in the page
   * cache) and are reported apart; the rest are the steady-state figures.
   */
  coldMachines?: number;
  /** Another build's bin/sidereal.js to serve with (before/after figures). */
  siderealBin?: string;
}

function register(configFile: string, n: number): number {
  const config = loadConfig(configFile);
  const network = networkPolicy(config);
  const inv = Inventory.open(config.dataDir, network);
  try {
    const base = toInt(FIRST_FIXED);
    const lines = ['mac,hostname,ipv4'];
    for (let i = 0; i < n; i++) lines.push(`${macFor(PREFIX, i)},node-${i},${fromInt(base + i)}`);
    const t0 = performance.now();
    const prepared = prepareImport(inv, lines.join('\n') + '\n', { format: 'csv', network });
    const r = applyImport(inv, prepared.plan, { actor: 'bench' });
    if (r.added.length !== n) throw new Error(`import added ${r.added.length} of ${n}`);
    return (performance.now() - t0) / 1000;
  } finally {
    inv.close();
  }
}

async function oneRun(o: Required<Omit<InventoryBenchOptions, 'quick'>>, k: number): Promise<RunFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-bench-inventory-'));
  let srv: Running | undefined;
  try {
    const net = await makeNet(`i${k}`);
    const setup = siderealConfig(net, dir, { pool: POOL });
    const importSeconds = register(setup.config, o.machines);
    const tok = await cli(setup.config, '--json', 'token', 'create', '--name', 'bench', '--role', 'admin');
    if (tok.code !== 0) throw new Error(`token create failed: ${tok.stderr}`);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    srv = await startSidereal(net, setup, o.nodeArgs, o.siderealBin || undefined);
    const idleRssMiB = rssMiB(srv.pid);
    const load = { server: SERVER_IP, relay: RELAY_IP, macPrefix: PREFIX, mode: 'paced' as const, rate: o.rate, timeoutMs: 1000, retries: 4, deadlineMs: 90_000 };
    const coldDhcp = await runLoadgen(net, { ...load, count: o.coldMachines });
    const c0 = cpuSeconds([srv.pid]) * 1000;
    const steal0 = stealSeconds();
    const dhcp = await runLoadgen(net, { ...load, first: o.coldMachines, count: o.machines - o.coldMachines });
    const dhcpCpuUs = ((cpuSeconds([srv.pid]) * 1000 - c0) * 1000) / Math.max(1, dhcp.completed);
    const dhcpStealSeconds = stealSeconds() - steal0;
    const r = await nsExec(net.cli, process.execPath, [clientJs, JSON.stringify({
      http: `http://${SERVER_IP}:8080`, api: `http://${SERVER_IP}:8081`, token, macPrefix: PREFIX, machines: o.machines, samples: o.samples, listRuns: 3,
    })], { timeout: 120_000, reject: false });
    const last = String(r.stdout).trim().split('\n').pop() ?? '';
    if (r.exitCode !== 0 || !last.startsWith('{')) throw new Error(`menu client failed: ${String(r.stderr).slice(-2000)}`);
    const menus = JSON.parse(last) as MenuResult;
    return { importSeconds, idleRssMiB, coldDhcp, dhcp, dhcpCpuUs, dhcpStealSeconds, menus, rssMiB: rssMiB(srv.pid) };
  } finally {
    await srv?.stop();
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: InventoryBenchOptions = {}): Promise<Section> {
  const machines = Math.min(50_000, opts.machines ?? 10_000);
  const o: Required<Omit<InventoryBenchOptions, 'quick'>> = {
    runs: Math.min(10, opts.runs ?? (opts.quick ? 1 : 3)),
    machines,
    rate: opts.rate ?? 1000,
    samples: opts.samples ?? (opts.quick ? 500 : 1000),
    coldMachines: Math.min(opts.coldMachines ?? 1000, Math.floor(machines / 2)),
    nodeArgs: opts.nodeArgs ?? [],
    siderealBin: opts.siderealBin ?? '',
  };
  const raw: RunFigures[] = [];
  try {
    for (let k = 0; k < o.runs; k++) {
      const f = await oneRun(o, k);
      raw.push(f);
      process.stderr.write(`run ${k + 1}/${o.runs}: import ${f.importSeconds.toFixed(1)} s; cold DHCP ${f.coldDhcp.completed}/${o.coldMachines} offer p99 ${f.coldDhcp.offer.p99.toFixed(2)} ms; DHCP ${f.dhcp.completed}/${o.machines - o.coldMachines} ` +
        `(CPU ${f.dhcpCpuUs.toFixed(0)} us/exchange, offer p50 ${f.dhcp.offer.p50.toFixed(2)} p99 ${f.dhcp.offer.p99.toFixed(2)} ms, exchange p99 ${f.dhcp.exchange.p99.toFixed(2)} ms, client loop delay p99 ${f.dhcp.clientLoopDelay.p99.toFixed(1)} max ${f.dhcp.clientLoopDelay.max.toFixed(1)} ms, steal ${f.dhcpStealSeconds.toFixed(2)} s, ${f.dhcp.retransmits} resent, ${f.dhcp.failed} failed); ` +
        `ipxe p99 ${f.menus.ipxe.p99.toFixed(2)} ms; pxelinux p99 ${f.menus.pxelinux.p99.toFixed(2)} ms; list ${f.menus.list.items} in ${f.menus.list.seconds.map((s) => s.toFixed(2)).join('/')} s; ` +
        `RSS ${f.idleRssMiB.toFixed(0)} -> ${f.rssMiB.toFixed(0)} MiB\n`);
    }
  } finally {
    await destroyAll();
  }
  const row = (c: string, metric: string, unit: string, pick: (f: RunFigures) => number, extra: Partial<Row> = {}): Row =>
    ({ case: c, metric, unit, sidereal: stat(raw.map(pick)), others: {}, ...extra });
  const sum = (pick: (f: RunFigures) => number) => raw.reduce((a, f) => a + pick(f), 0);
  const coldCase = `${o.machines} registered MACs: the first ${o.coldMachines} at ${o.rate}/s, from the daemon's start`;
  const dhcpCase = `${o.machines} registered MACs: the other ${o.machines - o.coldMachines} at ${o.rate}/s, full exchanges`;
  const menuCase = `${o.samples} registered MACs, one request at a time`;
  const rows: Row[] = [
    row(dhcpCase, 'reply p50 (DISCOVER -> OFFER)', 'ms', (f) => f.dhcp.offer.p50),
    row(dhcpCase, 'reply p99 (DISCOVER -> OFFER)', 'ms', (f) => f.dhcp.offer.p99, { target: { op: '<=', value: 5, on: 'value' } }),
    row(dhcpCase, 'reply p99 (REQUEST -> ACK, lease stored)', 'ms', (f) => f.dhcp.ack.p99, { target: { op: '<=', value: 5, on: 'value' } }),
    row(dhcpCase, 'exchange p99 (DISCOVER sent -> ACK received)', 'ms', (f) => f.dhcp.exchange.p99,
      { note: `${sum((f) => f.dhcp.retransmits)} resent, ${sum((f) => f.dhcp.failed)} failed over all runs` }),
    row(dhcpCase, 'server CPU time per completed exchange (user+sys)', 'µs', (f) => f.dhcpCpuUs),
    row(dhcpCase, 'CPU time the hypervisor took from the machine during the phase (/proc/stat steal)', 's', (f) => f.dhcpStealSeconds),
    row(coldCase, 'reply p99 (DISCOVER -> OFFER)', 'ms', (f) => f.coldDhcp.offer.p99),
    row(coldCase, 'reply p99 (REQUEST -> ACK, lease stored)', 'ms', (f) => f.coldDhcp.ack.p99,
      { note: `${sum((f) => f.coldDhcp.retransmits)} resent, ${sum((f) => f.coldDhcp.failed)} failed over all runs` }),
    row(menuCase, 'iPXE script /boot/<mac>.ipxe p50', 'ms', (f) => f.menus.ipxe.p50),
    row(menuCase, 'iPXE script /boot/<mac>.ipxe p99', 'ms', (f) => f.menus.ipxe.p99, { note: `${sum((f) => f.menus.ipxe.failures)} failed` }),
    row(menuCase, 'pxelinux menu pxelinux.cfg/01-<mac> (HTTP) p50', 'ms', (f) => f.menus.pxelinux.p50),
    row(menuCase, 'pxelinux menu pxelinux.cfg/01-<mac> (HTTP) p99', 'ms', (f) => f.menus.pxelinux.p99, { note: `${sum((f) => f.menus.pxelinux.failures)} failed` }),
    row(`GET /api/v1/machines, all ${o.machines} (pages of 1,000)`, 'time for the full list', 'ms', (f) => stat(f.menus.list.seconds).median * 1000,
      { note: `median of 3 walks per run; ${sum((f) => f.menus.list.failures)} failed` }),
    row(`${o.machines} machines, idle after start`, 'daemon RSS', 'MiB', (f) => f.idleRssMiB),
    row(`${o.machines} machines, after the DHCP, menu and API load`, 'daemon RSS', 'MiB', (f) => f.rssMiB, { target: { op: '<=', value: 200, on: 'value' } }),
    row(`import of ${o.machines} machines (inventory module, one transaction)`, 'time', 's', (f) => f.importSeconds),
  ];
  return {
    name: 'inventory',
    title: `Inventory at scale: ${o.machines} machines registered`,
    rows,
    notes: [
      `machines imported before \`sidereal serve\` starts (server/import: prepareImport + applyImport, CSV mac,hostname,ipv4), each with a fixed address from ${FIRST_FIXED} in the relayed subnet`,
      `DHCP: bench/lib/dhcp-loadgen.ts in a client namespace as relay ${RELAY_IP}, one full exchange per registered MAC, open loop at ${o.rate}/s; OFFER/ACK percentiles over exchanges without a resend`,
      `the first ${o.coldMachines} MACs start the moment the daemon is ready and are reported apart ("from the daemon's start"): a daemon is up long before a boot storm, so the targets are read on the other ${o.machines - o.coldMachines}, started right after them (server CPU is over those too)`,
      `menus and API: bench/lib/dhcp-inventory-client.ts (node fetch, keep-alive) in the client namespace, after the DHCP phase; ${o.samples} MACs spread over the ${o.machines}, after 20 warm-up requests`,
      'RSS from /proc/PID/status VmRSS (bench/lib/rss.ts); server CPU from /proc/PID/stat utime+stime over the DHCP phase',
      `${o.runs} run(s), each on a fresh daemon and inventory; median (min–max) over runs; no reference server for these figures`,
    ],
    raw,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean', default: false }, runs: { type: 'string' }, machines: { type: 'string' }, rate: { type: 'string' },
    samples: { type: 'string' }, 'cpu-prof': { type: 'string' }, 'sidereal-bin': { type: 'string' }, 'cold-machines': { type: 'string' },
  }, strict: false });
  const n = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
  await runStandalone(() => run({
    quick: process.argv.includes('--quick'), runs: n(values.runs), machines: n(values.machines), rate: n(values.rate), samples: n(values.samples),
    coldMachines: n(values['cold-machines']),
    nodeArgs: typeof values['cpu-prof'] === 'string' ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : undefined,
    siderealBin: typeof values['sidereal-bin'] === 'string' ? values['sidereal-bin'] : undefined,
  }));
}
