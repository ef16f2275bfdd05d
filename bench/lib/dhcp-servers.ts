/**
 * The DHCP benches' lab: a server namespace and a client namespace joined by
 * a veth, the relay's subnet routed through the client side, and the two
 * servers (Sidereal as it ships: `sidereal serve`, leases in SQLite; dnsmasq)
 * started there with their output going straight to a file (the bench
 * process must not spend the shared CPUs parsing log lines). Every process
 * is stopped by its PID; the caller removes the namespaces (destroyAll).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNs, linkNamespaces, ip, nsExec } from '../../test/helpers/netns.js';
import { repoRoot, siderealBin, writeConfig } from '../../test/helpers/serve.js';
import { startServer, type RunningServer } from '../../lab/server-process.js';
import type { LoadResult, LoadSpec } from './dhcp-loadgen.js';

export const SERVER_IP = '10.80.0.1';
export const CLIENT_IP = '10.80.0.2';
/** The relay (giaddr) and its subnet, served through the relay. */
export const RELAY_IP = '10.90.0.1';
export const RELAY_SUBNET = '10.90.0.0/16';
export const POOL = { start: '10.90.1.1', end: '10.90.255.250' };
export const loadgenJs = join(repoRoot, 'dist', 'bench', 'lib', 'dhcp-loadgen.js');

export interface BenchNet { srv: string; cli: string; srvIf: string; cliIf: string }

/** Fresh namespaces for one server run: srv (10.80.0.1) <-veth-> cli (10.80.0.2 + relay 10.90.0.1/16). */
export async function makeNet(tag: string): Promise<BenchNet> {
  const srv = await createNs(`s${tag}`);
  const cli = await createNs(`c${tag}`);
  const link = await linkNamespaces(srv, `${SERVER_IP}/24`, cli, `${CLIENT_IP}/24`, tag);
  await ip('-n', cli, 'addr', 'add', `${RELAY_IP}/16`, 'dev', link.bIf);
  await ip('-n', srv, 'route', 'add', RELAY_SUBNET, 'via', CLIENT_IP);
  // Room for bursts on both sides (the default 208 KiB holds ~600 DHCP packets).
  for (const ns of [srv, cli]) {
    await nsExec(ns, 'sysctl', ['-q', '-w', 'net.core.rmem_max=8388608', 'net.core.wmem_max=8388608']).catch(() => undefined);
  }
  return { srv, cli, srvIf: link.aIf, cliIf: link.bIf };
}

export type Running = RunningServer;

export interface SiderealSetup { dir: string; config: string }

/** Config for `sidereal serve` in `net.srv`: the relay subnet with a pool, HTTP and API on the veth address. */
export function siderealConfig(net: BenchNet, dir: string, o: { pool?: { start: string; end: string }; ackAfterFsync?: boolean } = {}): SiderealSetup {
  mkdirSync(join(dir, 'tftp'), { recursive: true });
  writeFileSync(join(dir, 'tftp', 'pxelinux.0'), 'x');
  const config = writeConfig(join(dir, 'sidereal.yaml'), {
    interface: net.srvIf, serverAddress: SERVER_IP, dataDir: join(dir, 'data'),
    dhcp: { subnet: '10.80.0.0/24', relays: [{ subnet: RELAY_SUBNET, router: RELAY_IP, pool: o.pool ?? POOL }],
      // Only when set: a build from before the key (--sidereal-bin) rejects it.
      ...(o.ackAfterFsync === false ? { ackAfterFsync: false } : {}) },
    tftp: { root: join(dir, 'tftp') },
    http: { listen: SERVER_IP, port: 8080 },
    api: { listen: SERVER_IP, port: 8081 },
    nfs: { backend: 'none' },
  });
  return { dir, config };
}

/** `bin`: another build's bin/sidereal.js (a before/after comparison); default this tree's. */
export async function startSidereal(net: BenchNet, setup: SiderealSetup, nodeArgs: string[] = [], bin = siderealBin): Promise<Running> {
  return startServer({
    // --insecure: the menu and API client runs in the bench's client namespace, so the API listens on the
    // namespace address, without TLS; nothing of it leaves the bench's two namespaces.
    name: 'sidereal', ns: net.srv, cmd: process.execPath, args: [...nodeArgs, bin, '--config', setup.config, 'serve', '--insecure'],
    logFile: join(setup.dir, 'sidereal.log'), ready: (log) => /"msg":"ready"/.test(log), readyTimeoutMs: 30_000, stopGraceMs: 10_000,
  });
}

export async function startDnsmasq(net: BenchNet, dir: string): Promise<Running> {
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'dnsmasq.log');
  const args = [
    '--no-daemon', '--conf-file=/dev/null', '--port=0',
    `--dhcp-range=${POOL.start},${POOL.end},255.255.0.0,1h`,
    '--dhcp-lease-max=20000', `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, '--log-facility=-',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    // Sidereal does not probe an address before offering it; dnsmasq's ping would hold every first offer.
    '--no-ping',
    '--dhcp-boot=pxelinux.0',
  ];
  return startServer({ name: 'dnsmasq', ns: net.srv, cmd: 'dnsmasq', args, logFile, ready: (log) => /DHCP, IP range/.test(log), readyTimeoutMs: 30_000, stopGraceMs: 10_000 });
}

/** The load generator as its own node process in the client namespace. */
export async function runLoadgen(net: BenchNet, spec: LoadSpec): Promise<LoadResult> {
  const r = await nsExec(net.cli, process.execPath, [loadgenJs, JSON.stringify(spec)], { timeout: (spec.deadlineMs ?? 120_000) + 30_000, reject: false });
  const last = String(r.stdout).trim().split('\n').pop() ?? '';
  if (r.exitCode !== 0 || !last.startsWith('{')) throw new Error(`loadgen failed (${r.exitCode}): ${String(r.stderr).slice(-2000)}`);
  return JSON.parse(last) as LoadResult;
}
