/**
 * dnsmasq as the reference boot server (DHCP + TFTP, no DNS), run in the
 * foreground inside a lab namespace and stopped by its PID. It is what
 * Sidereal's boot times are compared with.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type RunningServer } from './server-process.js';

export type { RunningServer };

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
  return startServer({
    name: 'dnsmasq', ns: o.ns, cmd: 'dnsmasq', args: dnsmasqArgs(o), logFile: path.join(o.workDir, 'dnsmasq.log'),
    ready: (log) => /TFTP root is/.test(log), readyTimeoutMs,
  });
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
