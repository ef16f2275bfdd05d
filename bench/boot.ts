/**
 * Boot benchmark: seconds from QEMU's start to the marker line of the lab
 * initrd, BIOS (SeaBIOS + iPXE ROM -> pxelinux) and UEFI (OVMF's own PXE ->
 * syslinux.efi), served by dnsmasq (the reference) and/or Sidereal.
 *
 *   node dist/bench/boot.js [--server dnsmasq|sidereal|both] [--firmware bios,uefi]
 *                           [--runs N] [--uefi-rom none|ipxe] [--no-ra] [--timeout S]
 *
 * Needs root (network namespace, taps). Everything runs in a lab namespace;
 * results go to bench/results/boot-<date>.json. With both servers it prints
 * the ratio sidereal/dnsmasq per firmware.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, prepareLabAssets, type LabAssets } from '../lab/assets.js';
import { bootAgainst, type LabServer } from '../lab/bootrun.js';
import { destroyAllNamespaces } from '../lab/netns.js';
import { createLabNetwork, type LabNetwork } from '../lab/network.js';
import type { Firmware } from '../lab/qemu.js';
import { repoRoot, siderealReady } from '../lab/sidereal.js';

export interface BootBenchOptions {
  servers: LabServer[];
  firmwares: Firmware[];
  runs: number;
  uefiRom: 'none' | 'ipxe';
  routerAdvert: boolean;
  timeoutMs: number;
  cacheDir: string;
  log?: (msg: string) => void;
}

export interface BootSample {
  server: LabServer;
  firmware: Firmware;
  run: number;
  ok: boolean;
  seconds: number;
  error?: string;
}

export interface BootBenchResult {
  date: string;
  host: { cpus: number; accel: 'tcg' };
  kernelVersion: string;
  options: Omit<BootBenchOptions, 'log' | 'cacheDir'>;
  samples: BootSample[];
  /** Median seconds of the successful runs, per server and firmware. */
  median: Partial<Record<LabServer, Partial<Record<Firmware, number | null>>>>;
  /** sidereal median / dnsmasq median, per firmware, when both ran. */
  ratio?: Partial<Record<Firmware, number | null>>;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function runBootBench(o: BootBenchOptions): Promise<BootBenchResult> {
  const log = o.log ?? ((m: string) => process.stdout.write(m + '\n'));
  const assets: LabAssets = await prepareLabAssets(o.cacheDir);
  const work = await mkdtemp(path.join(tmpdir(), 'sidereal-bench-'));
  let net: LabNetwork | undefined;
  const samples: BootSample[] = [];
  try {
    net = await createLabNetwork({ taps: 1, routerAdvert: o.routerAdvert });
    for (const server of o.servers) {
      for (const firmware of o.firmwares) {
        for (let run = 1; run <= o.runs; run++) {
          const workDir = path.join(work, `${server}-${firmware}-${run}`);
          try {
            const r = await bootAgainst({ server, firmware, uefiRom: o.uefiRom, net, assets, workDir, timeoutMs: o.timeoutMs });
            samples.push({ server, firmware, run, ok: r.ok, seconds: round(r.seconds), ...(r.error ? { error: r.error } : {}) });
            log(`${server.padEnd(8)} ${firmware.padEnd(4)} run ${run}: ${r.ok ? `${r.seconds.toFixed(2)} s` : `FAILED (${r.error}) serial log ${r.serialLog}`}`);
          } catch (e) {
            samples.push({ server, firmware, run, ok: false, seconds: 0, error: (e as Error).message });
            log(`${server.padEnd(8)} ${firmware.padEnd(4)} run ${run}: ERROR ${(e as Error).message}`);
          }
        }
      }
    }
  } finally {
    await net?.destroy();
    await rm(work, { recursive: true, force: true });
  }
  const med: BootBenchResult['median'] = {};
  for (const s of o.servers) {
    med[s] = {};
    for (const f of o.firmwares) {
      const m = median(samples.filter((x) => x.server === s && x.firmware === f && x.ok).map((x) => x.seconds));
      med[s]![f] = m === null ? null : round(m);
    }
  }
  const result: BootBenchResult = {
    date: new Date().toISOString(),
    host: { cpus: (await import('node:os')).cpus().length, accel: 'tcg' },
    kernelVersion: assets.kernelVersion,
    options: { servers: o.servers, firmwares: o.firmwares, runs: o.runs, uefiRom: o.uefiRom, routerAdvert: o.routerAdvert, timeoutMs: o.timeoutMs },
    samples,
    median: med,
  };
  if (o.servers.includes('dnsmasq') && o.servers.includes('sidereal')) {
    result.ratio = {};
    for (const f of o.firmwares) {
      const d = med.dnsmasq?.[f];
      const s = med.sidereal?.[f];
      result.ratio[f] = d && s ? round(s / d) : null;
    }
  }
  return result;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string', default: 'dnsmasq' },
      firmware: { type: 'string', default: 'bios,uefi' },
      runs: { type: 'string', default: '1' },
      'uefi-rom': { type: 'string', default: 'none' },
      'no-ra': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '180' },
      cache: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node dist/bench/boot.js [--server dnsmasq|sidereal|both] [--firmware bios,uefi] [--runs 1..N] [--uefi-rom none|ipxe] [--no-ra] [--timeout S] [--cache DIR] [--out FILE]\n');
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/boot needs root (network namespaces and tap devices)\n');
    return 1;
  }
  const servers: LabServer[] = values.server === 'both' ? ['dnsmasq', 'sidereal'] : [values.server as LabServer];
  if (!servers.every((s) => s === 'dnsmasq' || s === 'sidereal')) {
    process.stderr.write(`--server must be dnsmasq, sidereal or both\n`);
    return 2;
  }
  const firmwares = values.firmware.split(',').map((f) => f.trim()) as Firmware[];
  if (!firmwares.every((f) => f === 'bios' || f === 'uefi')) {
    process.stderr.write('--firmware takes bios, uefi or bios,uefi\n');
    return 2;
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10) {
    process.stderr.write('--runs must be 1..10\n');
    return 2;
  }
  if (servers.includes('sidereal') && !(await siderealReady())) {
    process.stderr.write('node bin/sidereal.js --help fails: build Sidereal first (npm run build)\n');
    return 1;
  }
  const onSignal = () => {
    void destroyAllNamespaces().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const result = await runBootBench({
    servers, firmwares, runs,
    uefiRom: values['uefi-rom'] === 'ipxe' ? 'ipxe' : 'none',
    routerAdvert: !values['no-ra'],
    timeoutMs: Number(values.timeout) * 1000,
    cacheDir: values.cache ?? defaultCacheDir(),
  });
  for (const s of servers) {
    for (const f of firmwares) {
      const m = result.median[s]?.[f];
      process.stdout.write(`median ${s} ${f}: ${m === null || m === undefined ? 'no successful run' : `${m.toFixed(2)} s`} (${runs} run${runs > 1 ? 's' : ''})\n`);
    }
  }
  if (result.ratio) {
    for (const f of firmwares) {
      const r = result.ratio[f];
      process.stdout.write(`ratio sidereal/dnsmasq ${f}: ${r === null || r === undefined ? 'n/a' : r.toFixed(2)}\n`);
    }
  }
  const out = values.out ?? path.join(repoRoot(), 'bench', 'results', `boot-${result.date.slice(0, 10)}.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`wrote ${out}\n`);
  return result.samples.every((s) => s.ok) ? 0 : 1;
}

// Run only when executed directly (the module is also imported by tests).
if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  cli(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    async (e: unknown) => {
      await destroyAllNamespaces();
      process.stderr.write(`bench/boot: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
