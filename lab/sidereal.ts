/**
 * Driving Sidereal itself from the lab: write a config, run CLI commands,
 * start `sidereal serve` inside the lab namespace and wait for its `ready`
 * line, read a machine's boot events.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { startServer, type RunningServer } from './server-process.js';
import { installDir } from '../server/install-dir.js';

/** The repository root (works from lab/ and dist/lab/). */
export const repoRoot = installDir;

export function siderealBin(): string {
  return process.env.SIDEREAL_BIN ?? path.join(repoRoot(), 'bin', 'sidereal.js');
}

export interface LabConfigOptions {
  /** Directory that receives `sidereal.yaml`, `data/` and `tftp/`. */
  dir: string;
  iface?: string;
  serverIp?: string;
  subnet?: string;
  poolStart?: string;
  poolEnd?: string;
  httpPort?: number;
  /** Roots (the NFS-root lab): where they are, and ganesha's files for the exports. */
  rootsDir?: string;
  ganesha?: { exportsFile: string; pidFile: string };
}

export interface LabConfig {
  configFile: string;
  dataDir: string;
  tftpRoot: string;
}

export async function writeLabConfig(o: LabConfigOptions): Promise<LabConfig> {
  const serverIp = o.serverIp ?? '10.77.0.1';
  const dataDir = path.join(o.dir, 'data');
  const tftpRoot = path.join(o.dir, 'tftp');
  await mkdir(dataDir, { recursive: true });
  await mkdir(tftpRoot, { recursive: true });
  const config = {
    interface: o.iface ?? 'br0',
    serverAddress: serverIp,
    dataDir,
    dhcp: {
      subnet: o.subnet ?? '10.77.0.0/24',
      router: serverIp,
      dns: [serverIp],
      domain: 'lab.sidereal',
      leaseTime: 3600,
      pool: { start: o.poolStart ?? '10.77.0.100', end: o.poolEnd ?? '10.77.0.150' },
      unknownClients: 'pool',
    },
    tftp: { root: tftpRoot },
    http: { listen: serverIp, port: o.httpPort ?? 8080 },
    nfs: {
      server: serverIp,
      ...(o.ganesha ? { backend: 'ganesha', ganesha: o.ganesha } : {}),
    },
    roots: { recipes: path.join(repoRoot(), 'roots'), ...(o.rootsDir ? { dir: o.rootsDir } : {}) },
  };
  const configFile = path.join(o.dir, 'sidereal.yaml');
  await writeFile(configFile, stringify(config));
  return { configFile, dataDir, tftpRoot };
}

/** Run one CLI command (`sidereal --config C ...args`) on the host side; throws with its stderr on failure. */
export async function siderealCli(configFile: string, args: string[], timeoutMs = 60_000): Promise<string> {
  // --offline: the lab owns this server and its data dir, so it works on the inventory file through the
  // in-process API (same checks and audit as over HTTP), whether `serve` runs yet or not.
  const r = await execa('node', [siderealBin(), '--config', configFile, '--offline', ...args], { reject: false, timeout: timeoutMs });
  if (r.exitCode !== 0) {
    throw new Error(`sidereal ${args.join(' ')} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** True when the CLI answers `--help`. */
export async function siderealReady(): Promise<boolean> {
  if (!existsSync(siderealBin())) return false;
  const r = await execa('node', [siderealBin(), '--help'], { reject: false, timeout: 30_000 });
  return r.exitCode === 0;
}

/** Register the lab root and one machine. */
export async function registerLabNode(
  configFile: string,
  o: { root: string; kernel: string; initrd: string; mac: string; hostname: string; ip: string; kernelArgs?: string; loader?: string },
): Promise<void> {
  await siderealCli(configFile, [
    'root', 'add', o.root, '--arch', 'amd64', '--kernel', o.kernel, '--initrd', o.initrd,
    '--nfs-path', `/srv/sidereal/roots/${o.root}`, '--kernel-args', o.kernelArgs ?? 'console=ttyS0',
  ]);
  const group: string[] = [];
  if (o.loader) {
    await siderealCli(configFile, ['group', 'add', `${o.loader}-nodes`, '--loader', o.loader]);
    group.push('--group', `${o.loader}-nodes`);
  }
  await siderealCli(configFile, ['machine', 'add', o.mac, '--hostname', o.hostname, '--ip', o.ip, '--root', o.root, ...group]);
}

/** `sidereal serve` in the namespace; resolves once it logged `"msg":"ready"`. */
export async function startSidereal(ns: string, configFile: string, logFile: string, readyTimeoutMs = 30_000): Promise<RunningServer> {
  return startServer({
    name: 'sidereal serve', ns, cmd: 'node', args: [siderealBin(), '--config', configFile, 'serve'], logFile,
    ready: (log) => /"msg":"ready"/.test(log), readyTimeoutMs, stopGraceMs: 5000,
  });
}

export interface LabEvent {
  mac: string;
  at: number;
  stage: string;
  detail: Record<string, unknown>;
}

export async function machineEvents(configFile: string, mac: string): Promise<LabEvent[]> {
  const out = await siderealCli(configFile, ['--json', 'machine', 'events', mac]);
  return JSON.parse(out) as LabEvent[];
}

export async function machineTimeline(configFile: string, mac: string): Promise<string> {
  return siderealCli(configFile, ['machine', 'events', mac]);
}
