/**
 * A real boot storm: N QEMU nodes (TCG) powered on at the same moment on the
 * lab bridge, half BIOS (SeaBIOS + QEMU's iPXE ROM, then pxelinux) and half
 * UEFI (OVMF's own PXE, then syslinux.efi), all booting the lab kernel and
 * the marker initrd, against Sidereal and against dnsmasq (static per-MAC
 * menus). Reports the time from power-on until the last node prints the
 * marker, per server, and the ratio.
 *
 *   node dist/bench/qemu-storm.js [--quick] [--nodes N (6)] [--runs N (3; 1 with --quick)] [--timeout S] [--dnsmasq-first]
 *
 * Uses the lab's helpers as bench/boot.ts does for one node (lab/network.ts
 * for the namespace, bridge and one tap per node; lab/qemu.ts bootNode; the
 * servers started as lab/bootrun.ts starts them). Needs root.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, MARKER, prepareLabAssets, type LabAssets } from '../lab/assets.js';
import { dnsmasqTftpFiles, startDnsmasq, type RunningServer } from '../lab/dnsmasq.js';
import { destroyAllNamespaces } from '../lab/netns.js';
import { createLabNetwork, type LabNetwork } from '../lab/network.js';
import { bootNode, type BootResult, type Firmware } from '../lab/qemu.js';
import { machineEvents, siderealCli, siderealReady, startSidereal, writeLabConfig } from '../lab/sidereal.js';
import { LAB_ROOT_NAME, populateTftpRoot, writeStaticMenu } from '../lab/tftp.js';
import { isMain, runStandalone, stat, type Row, type Section } from './lib/report.js';
import { sampleRss } from './lib/proc.js';

type ServerName = 'sidereal' | 'dnsmasq';

export interface QemuStormOptions {
  quick?: boolean;
  nodes?: number;
  runs?: number;
  timeoutMs?: number;
  /** Run dnsmasq before Sidereal in the first run (then alternate). */
  dnsmasqFirst?: boolean;
  log?: (m: string) => void;
}

interface StormNodeDef {
  mac: string;
  ip: string;
  hostname: string;
  firmware: Firmware;
  tap: string;
}

interface NodeOutcome {
  hostname: string;
  firmware: Firmware;
  ok: boolean;
  /** Seconds from the storm's start (every QEMU spawned at once) to its marker, or to its failure. */
  seconds: number;
  error?: string;
  /** Sidereal only: its boot stages (s) from the machine's events. */
  stages?: Record<string, number>;
}

interface QemuStormRun {
  server: ServerName;
  run: number;
  lastS: number;
  ok: number;
  nodes: NodeOutcome[];
  lastBiosS: number;
  lastUefiS: number;
  peakRssMiB: number;
}

async function startServerFor(server: ServerName, net: LabNetwork, assets: LabAssets, defs: StormNodeDef[], dir: string): Promise<{ srv: RunningServer; configFile?: string }> {
  await mkdir(dir, { recursive: true });
  if (server === 'dnsmasq') {
    const tftpRoot = path.join(dir, 'tftp');
    const files = await populateTftpRoot(tftpRoot, assets);
    for (const d of defs) await writeStaticMenu(tftpRoot, d.mac, files, d.hostname);
    const srv = await startDnsmasq({
      ns: net.ns, iface: net.bridge, tftpRoot, workDir: dir,
      rangeStart: '10.77.0.100', rangeEnd: '10.77.0.150',
      hosts: defs.map((d) => ({ mac: d.mac, ip: d.ip, hostname: d.hostname })),
      verbose: false,
      extraArgs: ['--tftp-max=200'],
    });
    return { srv };
  }
  const cfg = await writeLabConfig({ dir, iface: net.bridge, serverIp: net.serverIp, subnet: net.subnet });
  const files = await populateTftpRoot(cfg.tftpRoot, assets);
  await siderealCli(cfg.configFile, [
    'root', 'add', LAB_ROOT_NAME, '--arch', 'amd64', '--kernel', files.kernel, '--initrd', files.initrd,
    '--nfs-path', `/srv/sidereal/roots/${LAB_ROOT_NAME}`, '--kernel-args', 'console=ttyS0',
  ]);
  const csv = path.join(dir, 'machines.csv');
  await writeFile(csv, ['mac,hostname,ipv4,root', ...defs.map((d) => `${d.mac},${d.hostname},${d.ip},${LAB_ROOT_NAME}`)].join('\n') + '\n');
  await siderealCli(cfg.configFile, ['machine', 'import', csv, '--format', 'csv']);
  const srv = await startSidereal(net.ns, cfg.configFile, path.join(dir, 'sidereal.log'));
  return { srv, configFile: cfg.configFile };
}

/** Seconds per stage of the machine's last boot, from its events (Sidereal's own timeline). */
function stagesFrom(events: Array<{ at: number; stage: string }>): Record<string, number> {
  if (events.length === 0) return {};
  const t0 = Math.min(...events.map((e) => e.at));
  const out: Record<string, number> = {};
  for (const e of events) out[e.stage] = Math.max(out[e.stage] ?? 0, Math.round((e.at - t0) / 10) / 100);
  return out;
}

export async function runQemuStorm(o: QemuStormOptions = {}): Promise<{ runs: QemuStormRun[]; notes: string[]; n: number }> {
  const log = o.log ?? ((m: string) => process.stdout.write(m + '\n'));
  const n = o.nodes ?? (o.quick ? 4 : 6);
  if (n < 2 || n > 40) throw new Error('--nodes must be 2..40');
  // One storm of each server differs from the next by more than the two servers do (TCG guests take
  // the whole machine): the ratio is read on medians of 3.
  const runs = o.runs ?? (o.quick ? 1 : 3);
  const timeoutMs = o.timeoutMs ?? 300_000;
  const assets = await prepareLabAssets(defaultCacheDir());
  const work = await mkdtemp(path.join(tmpdir(), 'sidereal-qstorm-'));
  const results: QemuStormRun[] = [];
  let net: LabNetwork | undefined;
  const binBefore = process.env.SIDEREAL_BIN;
  try {
    net = await createLabNetwork({ taps: n, routerAdvert: true });
    const defs: StormNodeDef[] = Array.from({ length: n }, (_, i) => ({
      mac: `52:54:00:77:01:${(0x10 + i).toString(16).padStart(2, '0')}`,
      ip: `10.77.0.${10 + i}`,
      hostname: `storm${String(i + 1).padStart(2, '0')}`,
      firmware: i % 2 === 0 ? 'bios' : 'uefi',
      tap: net!.taps[i]!,
    }));
    log(`qemu storm: ${n} nodes (${defs.filter((d) => d.firmware === 'bios').length} BIOS, ${defs.filter((d) => d.firmware === 'uefi').length} UEFI), ${runs} run(s) per server, TCG on ${cpus().length} cores`);
    for (let run = 1; run <= runs; run++) {
      // Alternate which server goes first from run to run (load on this machine drifts).
      const order: ServerName[] = (run + (o.dnsmasqFirst ? 1 : 0)) % 2 === 1 ? ['sidereal', 'dnsmasq'] : ['dnsmasq', 'sidereal'];
      for (const server of order) {
        const dir = path.join(work, `${server}-${run}`);
        const { srv, configFile } = await startServerFor(server, net, assets, defs, dir);
        let outcomes: NodeOutcome[];
        let rss = 0;
        try {
          const sampler = sampleRss([srv.pid], 200, timeoutMs + 60_000);
          const t0 = performance.now();
          outcomes = await Promise.all(defs.map(async (d): Promise<NodeOutcome> => {
            let r: BootResult;
            try {
              r = await bootNode({
                ns: net!.ns, tap: d.tap, mac: d.mac, firmware: d.firmware, uefiRom: 'none',
                marker: MARKER, timeoutMs, serialLog: path.join(dir, `serial-${d.hostname}-${d.firmware}.log`),
              });
            } catch (e) {
              return { hostname: d.hostname, firmware: d.firmware, ok: false, seconds: (performance.now() - t0) / 1000, error: (e as Error).message };
            }
            const seconds = (performance.now() - t0) / 1000;
            return { hostname: d.hostname, firmware: d.firmware, ok: r.ok, seconds, ...(r.error ? { error: r.error } : {}) };
          }));
          rss = sampler.stop();
          if (server === 'dnsmasq') {
            const files = dnsmasqTftpFiles(await srv.log());
            if (files.some((f) => !f.ok)) log(`  dnsmasq: ${files.filter((f) => !f.ok).length} TFTP requests not found (pxelinux's probes)`);
          }
        } finally {
          await srv.stop();
        }
        if (configFile) {
          for (const [i, d] of defs.entries()) {
            const ev = await machineEvents(configFile, d.mac).catch(() => []);
            outcomes[i]!.stages = stagesFrom(ev);
          }
        }
        const ok = outcomes.filter((x) => x.ok);
        const last = (f?: Firmware) => Math.max(0, ...outcomes.filter((x) => !f || x.firmware === f).map((x) => x.seconds));
        const r: QemuStormRun = {
          server, run, lastS: last(), ok: ok.length, nodes: outcomes,
          lastBiosS: last('bios'), lastUefiS: last('uefi'), peakRssMiB: rss,
        };
        results.push(r);
        log(`${server.padEnd(8)} run ${run}: last marker ${r.lastS.toFixed(1)} s (BIOS ${r.lastBiosS.toFixed(1)}, UEFI ${r.lastUefiS.toFixed(1)}), ${r.ok}/${n} reached the marker; ` +
          outcomes.map((x) => `${x.hostname}/${x.firmware} ${x.ok ? x.seconds.toFixed(1) : `FAILED ${x.error}`}`).join(', '));
        if (configFile) log('  sidereal stages (s from DHCP): ' + outcomes.map((x) => `${x.hostname} ${Object.entries(x.stages ?? {}).map(([k, v]) => `${k}@${v}`).join(' ')}`).join('; '));
      }
    }
  } finally {
    await net?.destroy();
    if (binBefore === undefined) delete process.env.SIDEREAL_BIN;
    else process.env.SIDEREAL_BIN = binBefore;
    if (process.env.STORM_KEEP) log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
  const notes = [
    `${n} QEMU nodes spawned at the same instant (-accel tcg, 512 MiB, 1 vCPU each) on one lab bridge, ${Math.ceil(n / 2)} BIOS (SeaBIOS + QEMU's virtio-net iPXE ROM -> pxelinux) and ${Math.floor(n / 2)} UEFI (OVMF's own PXE, no option ROM -> syslinux.efi), each to the marker initrd (kernel ${assets.kernelVersion}, marker initrd ${'~1 MiB'}), all files over TFTP.`,
    'Time to last node: from spawning the QEMUs to the last marker line on a serial console. The machine has 2 cores shared with the other jobs: TCG guests are CPU-bound, so the figure mostly measures emulation, the servers\' share of it is small.',
    `Sidereal: the nodes registered with machine import (group-less, default loader pxelinux); dnsmasq: the lab's dnsmasq (lab/dnsmasq.ts) with a dhcp-host per node, static per-MAC menus (pxelinux.cfg/ and efi64/pxelinux.cfg/), --tftp-max=200.`,
    `${runs} run(s) per server (a storm takes one to several minutes under TCG), ${o.dnsmasqFirst ? 'dnsmasq' : 'Sidereal'} first in the first run, the order alternating from run to run.`,
  ];
  return { runs: results, notes, n };
}

export async function run(opts: { quick?: boolean } & QemuStormOptions = {}): Promise<Section> {
  if (process.getuid?.() !== 0) throw new Error('bench/qemu-storm needs root (network namespace, taps)');
  if (!(await siderealReady())) throw new Error('node bin/sidereal.js --help fails: build Sidereal first');
  const { runs, notes, n } = await runQemuStorm(opts);
  const S = runs.filter((r) => r.server === 'sidereal');
  const D = runs.filter((r) => r.server === 'dnsmasq');
  const row = (c: string, metric: string, unit: string, f: (r: QemuStormRun) => number, target?: Row['target'], note?: string): Row => ({
    case: c, metric, unit, sidereal: stat(S.map(f)), others: { dnsmasq: stat(D.map(f)) },
    ...(target ? { target } : {}), ...(note ? { note } : {}),
  });
  const failed = (rs: QemuStormRun[]) => rs.reduce((a, r) => a + (n - r.ok), 0);
  const rows: Row[] = [
    row(`${n} QEMU nodes at once, BIOS + UEFI`, 'time to last marker', 's', (r) => r.lastS, { vs: 'dnsmasq', op: '<=', value: 1.0, on: 'ratio' },
      `nodes that missed the marker: Sidereal ${failed(S)}, dnsmasq ${failed(D)}`),
    row(`${n} QEMU nodes`, 'nodes at the marker', 'nodes', (r) => r.ok, { op: '>=', value: n, on: 'value' }),
    row('BIOS nodes (iPXE ROM -> pxelinux)', 'time to last marker', 's', (r) => r.lastBiosS),
    row('UEFI nodes (OVMF PXE -> syslinux.efi)', 'time to last marker', 's', (r) => r.lastUefiS),
    row(`${n} QEMU nodes`, 'server peak RSS', 'MiB', (r) => r.peakRssMiB),
  ];
  return { name: 'qemu-storm', title: `QEMU boot storm: ${n} nodes powered on at once`, rows, notes, raw: runs };
}

function cliOptions(): QemuStormOptions {
  const { values } = parseArgs({
    strict: false,
    options: { nodes: { type: 'string' }, runs: { type: 'string' }, timeout: { type: 'string' }, 'dnsmasq-first': { type: 'boolean' } },
  });
  const num = (v: unknown) => (typeof v === 'string' ? Number(v) : undefined);
  const onSignal = () => { void destroyAllNamespaces().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t = num(values.timeout);
  return { nodes: num(values.nodes), runs: num(values.runs), dnsmasqFirst: values['dnsmasq-first'] === true, ...(t ? { timeoutMs: t * 1000 } : {}) };
}

if (isMain(import.meta.url)) await runStandalone(() => run({ quick: process.argv.includes('--quick'), ...cliOptions() }));
