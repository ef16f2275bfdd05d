/**
 * The servers of the boot storm, each set up for the same N registered
 * nodes and started inside the server namespace:
 *
 *  - Sidereal: a lab config on the veth, the root, a group of iPXE nodes,
 *    the N machines imported from one CSV (`machine import`), `sidereal serve`;
 *  - the reference: dnsmasq (DHCP + TFTP, one conf file: a dhcp-host per
 *    node, static per-MAC pxelinux menus on disk, per-node iPXE script URLs)
 *    with nginx for the HTTP half (dnsmasq has no HTTP).
 *
 * Output goes straight to a log file (no pipe through the bench process, so
 * the bench does not pay for the servers' logging); every process is stopped
 * by its PID.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LabAssets } from '../../lab/assets.js';
import { startServer, type RunningServer } from '../../lab/server-process.js';
import { siderealBin, siderealCli, writeLabConfig } from '../../lab/sidereal.js';
import { LAB_ROOT_NAME, populateTftpRoot, pxelinuxMacName, type LabBootFiles } from '../../lab/tftp.js';

export interface StormHost {
  mac: string;
  ip: string;
  hostname: string;
  /** HTTP half: boots iPXE (undionly.kpxe), then script, kernel and initrd over HTTP. */
  http: boolean;
}

export interface StormNet {
  ns: string;
  iface: string;
  serverIp: string;
  /** e.g. 10.78.0.0/16 */
  subnet: string;
  netmask: string;
  poolStart: string;
  poolEnd: string;
  httpPort: number;
}

export interface Proc extends RunningServer {
  name: string;
}

export interface StartedServer {
  /** Every process of the server (nginx: its master; workers are found from it). */
  procs: Proc[];
  stop(): Promise<void>;
}

/** Start `cmd` in the namespace, logging to `logFile`, ready when `ready(log)` holds (lab/server-process.ts). */
async function startLogged(ns: string, name: string, cmd: string, args: string[], logFile: string, ready: (log: string) => boolean): Promise<Proc> {
  const s = await startServer({ name, ns, cmd, args, logFile, ready, readyTimeoutMs: 30_000, stopGraceMs: 5000 });
  return { name, ...s };
}

export interface PreparedSidereal {
  configFile: string;
  tftpRoot: string;
  files: LabBootFiles;
  start(logFile: string): Promise<StartedServer>;
}

/** Config, TFTP root and inventory for Sidereal (once; `start` runs a fresh `serve` on it). */
export async function prepareSidereal(dir: string, net: StormNet, assets: LabAssets, hosts: StormHost[]): Promise<PreparedSidereal> {
  const cfg = await writeLabConfig({
    dir, iface: net.iface, serverIp: net.serverIp, subnet: net.subnet,
    poolStart: net.poolStart, poolEnd: net.poolEnd, httpPort: net.httpPort,
  });
  const files = await populateTftpRoot(cfg.tftpRoot, assets);
  await siderealCli(cfg.configFile, [
    'root', 'add', LAB_ROOT_NAME, '--arch', 'amd64', '--kernel', files.kernel, '--initrd', files.initrd,
    '--nfs-path', `/srv/sidereal/roots/${LAB_ROOT_NAME}`, '--kernel-args', 'console=ttyS0',
  ]);
  await siderealCli(cfg.configFile, ['group', 'add', 'pxelinux-nodes', '--loader', 'pxelinux', '--root', LAB_ROOT_NAME]);
  await siderealCli(cfg.configFile, ['group', 'add', 'ipxe-nodes', '--loader', 'ipxe', '--root', LAB_ROOT_NAME]);
  const csv = path.join(dir, 'machines.csv');
  await writeFile(csv, ['mac,hostname,ipv4,group', ...hosts.map((h) => `${h.mac},${h.hostname},${h.ip},${h.http ? 'ipxe' : 'pxelinux'}-nodes`)].join('\n') + '\n');
  await siderealCli(cfg.configFile, ['machine', 'import', csv, '--format', 'csv'], 120_000);
  return {
    configFile: cfg.configFile,
    tftpRoot: cfg.tftpRoot,
    files,
    async start(logFile) {
      // STORM_CPU_PROF=DIR: write a V8 CPU profile of `serve` there (diagnostics; costs a little CPU).
      const prof = process.env.STORM_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.STORM_CPU_PROF}`] : [];
      const p = await startLogged(net.ns, 'sidereal serve', process.execPath, [...prof, siderealBin(), '--config', cfg.configFile, 'serve'], logFile,
        (log) => /"msg":"ready"/.test(log));
      return { procs: [p], stop: () => p.stop() };
    },
  };
}

/** The per-MAC menu dnsmasq serves from disk, shaped like the one Sidereal renders. */
export function staticMenu(h: StormHost, files: { kernel: string; initrd: string }, net: StormNet): string {
  return [
    `# Boot menu for ${h.hostname} (${h.mac})`,
    'DEFAULT root',
    'PROMPT 0',
    'TIMEOUT 30',
    '',
    'LABEL root',
    `  MENU LABEL ${LAB_ROOT_NAME} (shared, RAM overlay)`,
    `  KERNEL ${files.kernel}`,
    `  APPEND initrd=${files.initrd} ip=dhcp root=nfs:${net.serverIp}:/srv/sidereal/roots/${LAB_ROOT_NAME}:ro ro sidereal.overlay=tmpfs ` +
      `sidereal.hostname=${h.hostname} sidereal.url=http://${net.serverIp}:${net.httpPort} console=ttyS0`,
    '  IPAPPEND 2',
    '',
    'LABEL local',
    '  MENU LABEL Boot from the local disk',
    '  LOCALBOOT 0',
    '',
  ].join('\n');
}

export function staticIpxeScript(h: StormHost, files: { kernel: string; initrd: string }, net: StormNet): string {
  const url = (f: string) => `http://${net.serverIp}:${net.httpPort}/files/${f}`;
  return [
    '#!ipxe',
    `# iPXE script for ${h.hostname} (${h.mac})`,
    `kernel ${url(files.kernel)} initrd=${files.initrd} ip=dhcp root=nfs:${net.serverIp}:/srv/sidereal/roots/${LAB_ROOT_NAME}:ro ro ` +
      `sidereal.overlay=tmpfs sidereal.hostname=${h.hostname} sidereal.url=http://${net.serverIp}:${net.httpPort} console=ttyS0 BOOTIF=01-\${netX/mac:hexhyp}`,
    `initrd ${url(files.initrd)}`,
    'boot',
    '',
  ].join('\n');
}

export interface ReferenceOptions {
  /** dnsmasq --tftp-max (its default is 50). */
  tftpMax: number;
  /** dnsmasq --dhcp-lease-max (its default is 1000). */
  leaseMax: number;
  /** nginx worker_processes. */
  nginxWorkers: string;
}

export interface PreparedReference {
  tftpRoot: string;
  dnsmasqConf: string;
  nginxConf: string;
  start(logDir: string): Promise<StartedServer>;
}

/** TFTP root, menus, scripts and configs for dnsmasq + nginx. */
export async function prepareReference(dir: string, net: StormNet, assets: LabAssets, hosts: StormHost[], o: ReferenceOptions): Promise<PreparedReference> {
  const tftpRoot = path.join(dir, 'tftp');
  const www = path.join(dir, 'www');
  await mkdir(path.join(tftpRoot, 'pxelinux.cfg'), { recursive: true });
  await mkdir(path.join(www, 'boot'), { recursive: true });
  const files = await populateTftpRoot(tftpRoot, assets);
  const base = `http://${net.serverIp}:${net.httpPort}`;
  const conf = [
    'port=0',
    `interface=${net.iface}`,
    'bind-interfaces',
    `dhcp-range=${net.poolStart},${net.poolEnd},${net.netmask},1h`,
    `dhcp-option=option:router,${net.serverIp}`,
    `dhcp-option=option:dns-server,${net.serverIp}`,
    'dhcp-option=option:domain-name,lab.sidereal',
    'dhcp-match=set:ipxe,175',
    'dhcp-boot=tag:!ipxe,tag:ipxehalf,undionly.kpxe',
    'dhcp-boot=tag:!ipxe,tag:!ipxehalf,pxelinux.0',
    'enable-tftp',
    `tftp-root=${tftpRoot}`,
    `tftp-max=${o.tftpMax}`,
    `dhcp-lease-max=${o.leaseMax}`,
    'dhcp-authoritative',
    'no-ping',
    `pid-file=${path.join(dir, 'dnsmasq.pid')}`,
    `dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
    'log-facility=-',
  ];
  for (const [i, h] of hosts.entries()) {
    conf.push(`dhcp-host=${h.mac},set:h${i}${h.http ? ',set:ipxehalf' : ''},${h.ip},${h.hostname}`);
    if (h.http) {
      conf.push(`dhcp-boot=tag:ipxe,tag:h${i},${base}/boot/${h.mac}.ipxe`);
      await writeFile(path.join(www, 'boot', `${h.mac}.ipxe`), staticIpxeScript(h, files, net));
    } else {
      await writeFile(path.join(tftpRoot, 'pxelinux.cfg', pxelinuxMacName(h.mac)), staticMenu(h, files, net));
    }
  }
  const dnsmasqConf = path.join(dir, 'dnsmasq.conf');
  await writeFile(dnsmasqConf, conf.join('\n') + '\n');
  const ngx = path.join(dir, 'nginx');
  await mkdir(ngx, { recursive: true });
  const nginxConf = path.join(ngx, 'nginx.conf');
  await writeFile(nginxConf, `user root;
worker_processes ${o.nginxWorkers};
pid ${ngx}/nginx.pid;
error_log ${ngx}/error.log;
events { worker_connections 4096; }
http {
  default_type application/octet-stream;
  access_log ${ngx}/access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  client_body_temp_path ${ngx}/body;
  proxy_temp_path ${ngx}/proxy;
  fastcgi_temp_path ${ngx}/fastcgi;
  uwsgi_temp_path ${ngx}/uwsgi;
  scgi_temp_path ${ngx}/scgi;
  server {
    listen ${net.serverIp}:${net.httpPort};
    root ${www};
    location /files/ { alias ${tftpRoot}/; }
  }
}
`);
  return {
    tftpRoot, dnsmasqConf, nginxConf,
    async start(logDir) {
      const d = await startLogged(net.ns, 'dnsmasq', 'dnsmasq', ['--no-daemon', `--conf-file=${dnsmasqConf}`], path.join(logDir, 'dnsmasq.log'),
        (log) => /TFTP root is/.test(log));
      let n: Awaited<ReturnType<typeof startLogged>>;
      try {
        n = await startLogged(net.ns, 'nginx', '/usr/sbin/nginx', ['-e', path.join(ngx, 'error.log'), '-c', nginxConf, '-g', 'daemon off;'],
          path.join(logDir, 'nginx.log'), () => true);
      } catch (e) {
        await d.stop();
        throw e;
      }
      return {
        procs: [d, n],
        async stop() {
          await n.stop();
          await d.stop();
        },
      };
    },
  };
}

