/**
 * One lab boot from end to end against a chosen server: lay out a TFTP root,
 * start the server (dnsmasq or `sidereal serve`) in the lab namespace, boot a
 * QEMU node to the marker, stop the server. Shared by bench/boot.ts,
 * lab/main.ts and test/e2e/boot.test.ts so all three measure the same thing.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { LabAssets } from './assets.js';
import { MARKER } from './assets.js';
import { dnsmasqTftpFiles, startDnsmasq, type RunningServer } from './dnsmasq.js';
import type { LabNetwork } from './network.js';
import { nsStart } from './netns.js';
import { sleep, stopChild } from './proc.js';
import { bootNode, type BootResult, type Firmware } from './qemu.js';
import { machineEvents, registerLabNode, startSidereal, writeLabConfig, type LabEvent } from './sidereal.js';
import { LAB_ROOT_NAME, populateTftpRoot, writeStaticMenu } from './tftp.js';

export type LabServer = 'dnsmasq' | 'sidereal';

export interface LabNode {
  mac: string;
  ip: string;
  hostname: string;
  /** Sidereal only: put the node in a group of that loader (default: the config's, pxelinux). */
  loader?: 'pxelinux' | 'lpxelinux' | 'ipxe';
}

export const DEFAULT_NODE: LabNode = { mac: '52:54:00:77:00:10', ip: '10.77.0.10', hostname: 'node01' };

export interface BootRunOptions {
  server: LabServer;
  firmware: Firmware;
  uefiRom?: 'ipxe' | 'none';
  net: LabNetwork;
  tap?: string;
  assets: LabAssets;
  /** A fresh directory for this run (config, TFTP root, logs). */
  workDir: string;
  node?: LabNode;
  timeoutMs?: number;
  onLine?: (line: string) => void;
  /** Sidereal: leave the server running and return it (lab --keep). */
  keepServer?: boolean;
  /** dnsmasq only: extra command-line arguments. */
  dnsmasqArgs?: string[];
  /** Write a packet capture of the bridge (DHCP, TFTP requests, HTTP) to this file (tshark). */
  pcap?: string;
}

export interface BootRunResult extends BootResult {
  server: LabServer;
  firmware: Firmware;
  serialLog: string;
  serverLog: string;
  /** dnsmasq: TFTP files it logged, in order. */
  tftpFiles?: Array<{ file: string; ok: boolean }>;
  /** sidereal: the machine's boot events after the boot. */
  events?: LabEvent[];
  configFile?: string;
  /** Set when keepServer was asked: the caller stops it. */
  running?: RunningServer;
}

export async function bootAgainst(o: BootRunOptions): Promise<BootRunResult> {
  const node = o.node ?? DEFAULT_NODE;
  const tap = o.tap ?? o.net.taps[0];
  if (!tap) throw new Error('the lab network has no tap');
  await mkdir(o.workDir, { recursive: true });
  const serialLog = path.join(o.workDir, `serial-${o.firmware}.log`);
  const timeoutMs = o.timeoutMs ?? 180_000;
  let server: RunningServer | undefined;
  let configFile: string | undefined;
  let keep = false;
  let capture: { stop(): Promise<void> } | undefined;
  try {
    if (o.server === 'dnsmasq') {
      const tftpRoot = path.join(o.workDir, 'tftp');
      const files = await populateTftpRoot(tftpRoot, o.assets);
      await writeStaticMenu(tftpRoot, node.mac, files, node.hostname);
      const [a, b, c] = o.net.serverIp.split('.');
      server = await startDnsmasq({
        ns: o.net.ns, iface: o.net.bridge, tftpRoot, workDir: o.workDir,
        rangeStart: `${a}.${b}.${c}.100`, rangeEnd: `${a}.${b}.${c}.150`,
        hosts: [node],
        extraArgs: o.dnsmasqArgs,
      });
    } else {
      const cfg = await writeLabConfig({ dir: o.workDir, iface: o.net.bridge, serverIp: o.net.serverIp, subnet: o.net.subnet });
      configFile = cfg.configFile;
      const files = await populateTftpRoot(cfg.tftpRoot, o.assets);
      await registerLabNode(cfg.configFile, { root: LAB_ROOT_NAME, kernel: files.kernel, initrd: files.initrd, ...node });
      server = await startSidereal(o.net.ns, cfg.configFile, path.join(o.workDir, 'sidereal.log'));
    }
    if (o.pcap) capture = await startCapture(o.net.ns, o.net.bridge, o.pcap);
    const boot = await bootNode({
      ns: o.net.ns, tap, mac: node.mac, firmware: o.firmware, uefiRom: o.uefiRom ?? 'none',
      marker: MARKER, timeoutMs, serialLog, onLine: o.onLine,
    });
    const serverLog = await server.log();
    const result: BootRunResult = { ...boot, server: o.server, firmware: o.firmware, serialLog, serverLog, configFile };
    if (o.server === 'dnsmasq') result.tftpFiles = dnsmasqTftpFiles(serverLog);
    else if (configFile) result.events = await machineEvents(configFile, node.mac).catch(() => undefined);
    if (o.keepServer) {
      keep = true;
      result.running = server;
    }
    return result;
  } finally {
    await capture?.stop();
    if (!keep) await server?.stop();
  }
}

/** tshark on the lab bridge, inside the namespace, stopped by PID. */
async function startCapture(ns: string, iface: string, file: string): Promise<{ stop(): Promise<void> }> {
  const child = nsStart(ns, 'tshark', ['-q', '-i', iface, '-w', file, '-f', 'udp or tcp port 8080'], {
    stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false,
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !/Capturing on/.test(err) && child.exitCode === null) await sleep(50);
  return { stop: () => stopChild(child, 2000) };
}
