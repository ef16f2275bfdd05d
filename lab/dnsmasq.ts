/**
 * dnsmasq as the reference boot server (DHCP + TFTP, no DNS), run in the
 * foreground inside a lab namespace and stopped by its PID. It is what
 * Sidereal's boot times are compared with.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { nsStart } from './netns.js';
import { sleep, stopChild } from './proc.js';

export interface DnsmasqOptions {
  ns: string;
  iface: string;
  tftpRoot: string;
  /** Directory for its pid file, lease file and log. */
  workDir: string;
  rangeStart: string;
  rangeEnd: string;
  netmask?: string;
  hosts: Array<{ mac: string; ip: string; hostname?: string }>;
  /** Log every DHCP exchange and TFTP transfer (default true). */
  verbose?: boolean;
  /** Appended to the command line (experiments: e.g. `--dhcp-option-force=60,PXEClient`). */
  extraArgs?: string[];
}

export interface RunningServer {
  pid: number;
  logFile: string;
  /** Everything the server logged so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export function dnsmasqArgs(o: DnsmasqOptions): string[] {
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    `--interface=${o.iface}`,
    '--bind-interfaces',
    `--dhcp-range=${o.rangeStart},${o.rangeEnd},${o.netmask ?? '255.255.255.0'},1h`,
    ...o.hosts.map((h) => `--dhcp-host=${h.mac},${h.ip}${h.hostname ? ',' + h.hostname : ''}`),
    '--enable-tftp',
    `--tftp-root=${o.tftpRoot}`,
    '--dhcp-match=set:efi64,option:client-arch,7',
    '--dhcp-match=set:efi64,option:client-arch,9',
    '--dhcp-match=set:efi32,option:client-arch,6',
    '--dhcp-boot=tag:efi64,efi64/syslinux.efi',
    '--dhcp-boot=tag:efi32,efi32/syslinux.efi',
    '--dhcp-boot=tag:!efi64,tag:!efi32,pxelinux.0',
    '--dhcp-authoritative',
    '--no-ping',
    `--pid-file=${path.join(o.workDir, 'dnsmasq.pid')}`,
    `--dhcp-leasefile=${path.join(o.workDir, 'dnsmasq.leases')}`,
    '--log-facility=-',
  ];
  if (o.verbose ?? true) args.push('--log-dhcp');
  args.push(...(o.extraArgs ?? []));
  return args;
}

export async function startDnsmasq(o: DnsmasqOptions, readyTimeoutMs = 10_000): Promise<RunningServer> {
  const logFile = path.join(o.workDir, 'dnsmasq.log');
  const out = createWriteStream(logFile);
  let text = '';
  const child: ResultPromise = nsStart(o.ns, 'dnsmasq', dnsmasqArgs(o), {
    stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false,
  });
  const onData = (c: Buffer) => {
    text += c.toString();
    out.write(c);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const server: RunningServer = {
    pid: child.pid ?? -1,
    logFile,
    log: async () => text,
    stop: async () => {
      await stopChild(child);
      await new Promise<void>((r) => out.end(r));
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      await server.stop();
      throw new Error(`dnsmasq exited at start: ${text.trim()}`);
    }
    if (/TFTP root is/.test(text)) return server;
    await sleep(50);
  }
  await server.stop();
  throw new Error(`dnsmasq not ready after ${readyTimeoutMs} ms: ${text.trim()}`);
}

/** TFTP paths dnsmasq logged as sent or failed, in order (from `--log-facility=-`). */
export function dnsmasqTftpFiles(log: string): Array<{ file: string; ok: boolean }> {
  const out: Array<{ file: string; ok: boolean }> = [];
  for (const line of log.split('\n')) {
    const sent = /dnsmasq-tftp\[\d+\]: sent (\S+) to/.exec(line);
    if (sent?.[1]) out.push({ file: sent[1], ok: true });
    const nf = /dnsmasq-tftp\[\d+\]: (?:file|cannot access) (\S+?):? (?:not found|No such file)/.exec(line);
    if (nf?.[1]) out.push({ file: nf[1], ok: false });
  }
  return out;
}

export async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}
