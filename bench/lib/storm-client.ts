/**
 * The boot storm's client process, run inside the client namespace
 * (`ip netns exec NS node dist/bench/lib/storm-client.js CONFIG.json`): its
 * share of the storm's simulated PXE nodes, each powered on at its `atMs`
 * after the storm's start (`startAtMs`, shared by every client process of the
 * storm), each booting as its DHCP answer says:
 *
 *  - bootfile pxelinux.0: the PXE ROM's TFTP of pxelinux.0, pxelinux's
 *    ldlinux.c32, its config probe (UUID, 01-MAC, hex IP..., default) until
 *    one is found, then kernel and initrd over TFTP (blksize 1408, tsize);
 *  - bootfile undionly.kpxe: the ROM's TFTP of iPXE, iPXE's own DHCP
 *    (options 77 and 175), its script over HTTP, kernel and initrd over HTTP.
 *
 * Prints one JSON line: every node's result with its phase times.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  DhcpMux, httpGet, parseIpxeScript, parsePxelinuxMenu, pxelinuxConfigNames, tftpGet, TftpNotFound, type Lease,
} from './pxe-client.js';
import { isMain } from './report.js';

export interface StormNode {
  mac: string;
  /** The address its reservation gives it (already on the client interface). */
  ip: string;
  uuid: string;
  arch: number;
  /** When it powers on, ms from the storm's start (its place in the whole storm's spread). */
  atMs: number;
}

export interface StormClientConfig {
  server: string;
  httpPort: number;
  nodes: StormNode[];
  /** The storm's start, epoch ms: every client process of one storm starts on it. */
  startAtMs: number;
  /** Give up on the whole storm after this long (every node still running fails). */
  deadlineMs: number;
  /** DHCP retransmit schedule of the PXE ROM, seconds (PXE 2.1: 4, 8, 16, 32). */
  pxeDhcpSchedule: number[];
  /** iPXE's DHCP schedule, seconds. */
  ipxeDhcpSchedule: number[];
  /** TFTP retransmit timeouts, ms. */
  tftpSchedule: number[];
  httpTimeoutMs: number;
}

export type Phase = 'dhcp' | 'bootloader' | 'menu' | 'kernel' | 'initrd';
export const PHASES: Phase[] = ['dhcp', 'bootloader', 'menu', 'kernel', 'initrd'];

export interface NodeResult {
  mac: string;
  via: 'tftp' | 'http' | '?';
  ok: boolean;
  error?: string;
  /** ms from the storm's start. */
  start: number;
  end: number;
  /** ms spent in each phase. */
  phases: Partial<Record<Phase, number>>;
  /** ms from the storm's start at which each phase ended. */
  phaseEnd: Partial<Record<Phase, number>>;
  dhcpRetransmits: number;
  tftpRetransmits: number;
  bytes: number;
}

export interface StormClientResult {
  nodes: NodeResult[];
  /** ms from the storm's start until the last node had everything (or the deadline). */
  lastMs: number;
  cpuMs: { user: number; system: number };
  /** Client TFTP retransmissions in each second of the storm. */
  retransmitsBySecond: number[];
}

const PXE_ROM_BLKSIZE = 1456;
const PXELINUX_BLKSIZE = 1408;

async function waitForTcp(host: string, port: number, from: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port, localAddress: from });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} not accepting connections after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as StormClientConfig;
  if (cfg.nodes.length > 0) await waitForTcp(cfg.server, cfg.httpPort, cfg.nodes[0]!.ip, 15_000);
  const mux = await DhcpMux.open();
  await new Promise((r) => setTimeout(r, Math.max(0, cfg.startAtMs - Date.now())));
  const cpu0 = process.cpuUsage();
  // Times count from the storm's start, even for a process that came late to it.
  const t0 = performance.now() - Math.max(0, Date.now() - cfg.startAtMs);
  const rel = () => performance.now() - t0;
  /** TFTP retransmissions per second of the storm. */
  const retransmitsBySecond: number[] = [];
  const onRetransmit = () => {
    const sec = Math.floor(rel() / 1000);
    retransmitsBySecond[sec] = (retransmitsBySecond[sec] ?? 0) + 1;
  };

  const bootOne = async (n: StormNode, r: NodeResult): Promise<void> => {
    const uuid = Buffer.from(n.uuid, 'hex');
    let mark = performance.now();
    const phase = (p: Phase) => {
      const now = performance.now();
      r.phases[p] = (r.phases[p] ?? 0) + (now - mark);
      r.phaseEnd[p] = now - t0;
      mark = now;
    };
    const tftp = async (file: string, server: string, blksize: number, keep = false) => {
      const g = await tftpGet(n.ip, server, file, { blksize, tsize: true, schedule: cfg.tftpSchedule, onRetransmit }, keep);
      r.tftpRetransmits += g.retransmits;
      r.bytes += g.bytes;
      return g;
    };
    const lease: Lease = await mux.lease({ mac: n.mac, uuid, arch: n.arch, ipxe: false }, cfg.pxeDhcpSchedule);
    r.dhcpRetransmits += lease.retransmits;
    if (lease.ip !== n.ip) throw new Error(`dhcp: leased ${lease.ip}, its reservation is ${n.ip}`);
    phase('dhcp');
    const server = lease.nextServer;
    if (/pxelinux\.0$/.test(lease.bootFile)) {
      r.via = 'tftp';
      await tftp(lease.bootFile, server, PXE_ROM_BLKSIZE);
      await tftp('ldlinux.c32', server, PXELINUX_BLKSIZE);
      phase('bootloader');
      let menu: Buffer | undefined;
      for (const name of pxelinuxConfigNames(uuid, n.mac, lease.ip)) {
        try {
          menu = (await tftp(name, server, PXELINUX_BLKSIZE, true)).data;
          break;
        } catch (e) {
          if (!(e instanceof TftpNotFound)) throw e;
        }
      }
      if (!menu) throw new Error('pxelinux: no config file found, not even default');
      phase('menu');
      const files = parsePxelinuxMenu(menu.toString('latin1'));
      await tftp(files.kernel, server, PXELINUX_BLKSIZE);
      phase('kernel');
      await tftp(files.initrd, server, PXELINUX_BLKSIZE);
      phase('initrd');
    } else if (/\.(?:kpxe|efi)$/.test(lease.bootFile)) {
      r.via = 'http';
      await tftp(lease.bootFile, server, PXE_ROM_BLKSIZE);
      phase('bootloader');
      const l2 = await mux.lease({ mac: n.mac, uuid, arch: n.arch, ipxe: true }, cfg.ipxeDhcpSchedule);
      r.dhcpRetransmits += l2.retransmits;
      if (l2.ip !== n.ip) throw new Error(`dhcp (iPXE): leased ${l2.ip}, its reservation is ${n.ip}`);
      phase('dhcp');
      if (!/^http:\/\//.test(l2.bootFile)) throw new Error(`iPXE got boot file ${JSON.stringify(l2.bootFile)}, not an http URL`);
      const script = await httpGet(n.ip, l2.bootFile, cfg.httpTimeoutMs, true);
      r.bytes += script.bytes;
      phase('menu');
      const files = parseIpxeScript(script.data!.toString('latin1'));
      r.bytes += (await httpGet(n.ip, files.kernel, cfg.httpTimeoutMs)).bytes;
      phase('kernel');
      r.bytes += (await httpGet(n.ip, files.initrd, cfg.httpTimeoutMs)).bytes;
      phase('initrd');
    } else {
      throw new Error(`unexpected boot file ${JSON.stringify(lease.bootFile)}`);
    }
  };

  const results: NodeResult[] = cfg.nodes.map((n) => ({
    mac: n.mac, via: '?', ok: false, start: 0, end: 0, phases: {}, phaseEnd: {}, dhcpRetransmits: 0, tftpRetransmits: 0, bytes: 0,
  }));
  const runs = cfg.nodes.map((n, i) => new Promise<void>((resolve) => {
    setTimeout(() => {
      const r = results[i]!;
      r.start = rel();
      bootOne(n, r).then(
        () => { r.ok = true; },
        (e: Error) => { r.error = e.message; },
      ).finally(() => {
        r.end = rel();
        resolve();
      });
    }, Math.max(0, n.atMs - rel()));
  }));
  let deadline: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(runs),
    new Promise<void>((resolve) => { deadline = setTimeout(resolve, cfg.deadlineMs); }),
  ]);
  clearTimeout(deadline);
  const lastMs = rel();
  for (const r of results) {
    if (!r.ok && !r.error) {
      r.error = `still running at the ${cfg.deadlineMs} ms deadline`;
      r.end = lastMs;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  mux.close();
  const out: StormClientResult = {
    nodes: results,
    lastMs: Math.max(...results.map((r) => r.end)),
    cpuMs: { user: cpu.user / 1000, system: cpu.system / 1000 },
    retransmitsBySecond: Array.from(retransmitsBySecond, (x) => x ?? 0),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  // Sockets of nodes still running at the deadline would keep the loop alive.
  process.exit(0);
}

if (isMain(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`storm-client: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
