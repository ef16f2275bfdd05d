/**
 * Sidereal's one configuration file (YAML). Every key is documented in the
 * README; `loadConfig` refuses a file with an unknown key, a missing required
 * key or a bad value, naming the key. Only what cannot live in the inventory
 * is here: where to listen, the network's shape, where files are.
 */
import { readFileSync } from 'node:fs';
import path, { isAbsolute } from 'node:path';
import { installDir } from '../install-dir.js';
import { parse as parseYaml } from 'yaml';
import type { ClientArch, Loader, BootMode } from '../boot/types.js';
import {
  ConfigError, type Obj, isObj, describe, rejectUnknownKeys, section, str, int, oneOf, join,
} from './validate.js';
import { parseCidr, toInt, isIpv4, type Cidr } from '../net/ipv4.js';

export { ConfigError };

export interface PoolRange { start: string; end: string }

export interface RelaySubnet { subnet: Cidr; router?: string; pool?: PoolRange }

export interface SiderealConfig {
  /** Provisioning interface: DHCP answers only broadcasts that arrive on it. */
  interface?: string;
  /** This server's address on the provisioning network (siaddr, option 54, URLs). */
  serverAddress: string;
  dataDir: string;
  dhcp: {
    enabled: boolean;
    port: number;
    subnet: Cidr;
    router?: string;
    dns: string[];
    domain?: string;
    leaseTime: number;
    pool?: PoolRange;
    unknownClients: 'pool' | 'ignore';
    /** Addresses only registered machines without a static one get, before `pool`. */
    registeredPool?: PoolRange;
    relays: RelaySubnet[];
    /** Packets per second one client MAC may send; beyond, dropped (0: no limit). */
    maxPacketsPerMac: number;
    /** OFFERs held in memory at once; beyond, only registered machines get one (taking an unregistered MAC's). */
    maxPendingOffers: number;
    /** Seconds between probes for another DHCP server on `interface` (0: no check). */
    rogueCheckInterval: number;
    /**
     * true: an ACK is sent once its lease is fsynced. false: once it is committed to SQLite's
     * WAL (it survives a crash of the daemon; the fsync follows, and a power loss meanwhile may lose it).
     */
    ackAfterFsync: boolean;
  };
  tftp: {
    enabled: boolean; root: string; port: number; maxBlksize?: number; maxWindowsize: number;
    /** Caps: transfers in all, transfers from one client address, the `timeout` option acknowledged (s). */
    maxSessions: number; maxSessionsPerClient: number; maxTimeout: number;
    /** Threads sending the data phase (native pump), transfers spread over them. */
    threads: number;
  };
  /** threads: the native threads sending file bodies with sendfile. */
  http: { listen: string; port: number; publicUrl: string; threads: number; maxConnections: number };
  /**
   * The admin API: loopback by default, apart from the boot HTTP server nodes reach. `tls`:
   * certificate and key (PEM files); required to listen anywhere but loopback (or `serve --insecure`).
   */
  api: { enabled: boolean; listen: string; port: number; tls?: { cert: string; key: string } };
  nfs: {
    server: string;
    options: string;
    /**
     * Who serves the roots: `kernel` (exports.d + exportfs), `ganesha` (an included EXPORT file,
     * then SIGHUP), `none` (Sidereal exports nothing; the admin does).
     */
    backend: 'kernel' | 'ganesha' | 'none';
    /** kernel: the file Sidereal owns under /etc/exports.d. */
    exportsFile: string;
    /** ganesha: the file of EXPORT blocks Sidereal owns (`%include` it from ganesha.conf) and ganesha's pid file. */
    ganesha: { exportsFile: string; pidFile: string };
    /** An extra share for the nodes (SIDUS's /home), read-write to the served subnets. */
    home?: { path: string };
  };
  /**
   * Where root trees (one folder per root, a `gen-*` per build, `current`) and the builds' package
   * cache live; `proxy`: an HTTP proxy for the builds' package downloads (apt-cacher-ng, a site proxy).
   */
  roots: { dir: string; cacheDir: string; recipes: string; proxy?: string };
  boot: {
    /** Boot file per client architecture (option 93); groups may override. */
    files: Record<ClientArch, string>;
    /** For machines and groups that set none. */
    defaults: { loader: Loader; bootMode: BootMode; root?: string; kernelArgs: string };
  };
  log: { level: string };
  /** On SIGTERM or a reload, how long transfers in flight may take to finish before they are ended. */
  stopGraceSeconds: number;
}

/**
 * TFTP pump threads by default: 1, as dnsmasq. In a 500-node storm on 2 cores (bench/storm.ts,
 * 2026-12-07, the pump reading with recvmmsg) the clients and the server share the cores, and a
 * second pump thread wakes on the other core for every ACK: 1 thread 31.7-33.4 s, 0.91x dnsmasq
 * in the same run, server CPU 16.9 s; 2 threads 44.6-47.8 s, 1.26x, server CPU 26.2 s. With
 * curl clients (bench/tftp.ts, 2 runs each) 1 and 2 threads were even: 20 clients 1.09x and
 * 1.19x tftpd-hpa, 100 clients 1.22x and 1.19x. Raise it on a server with cores to spare.
 */
const DEFAULT_TFTP_THREADS = 1;

/**
 * Threads sending bodies by default (`http.threads`) for the sendfile pump. 2, as measured on 2 cores (bench/http.ts,
 * 100 clients, back to back): 1 thread 1802-1893 MB/s, 0.75-0.78x nginx, with 0.6 s of the
 * machine left idle; 2 threads 2043-2283 MB/s, 0.91x.
 */
export const DEFAULT_HTTP_THREADS = 2;

const TOP_KEYS = ['interface', 'serverAddress', 'dataDir', 'dhcp', 'tftp', 'http', 'api', 'nfs', 'roots', 'boot', 'log', 'stopGraceSeconds'] as const;

export const DEFAULT_BOOT_FILES: Record<ClientArch, string> = {
  bios: 'pxelinux.0',
  efi32: 'efi32/syslinux.efi',
  efi64: 'efi64/syslinux.efi',
  // UEFI HTTP boot loads iPXE over HTTP, which then asks DHCP again and gets its per-MAC script:
  // syslinux.efi loaded by HTTP boot fails ("Failed to locate root device", seen with OVMF in the lab).
  'efi64-http': 'ipxe.efi',
  arm64: 'arm64/grubnetaa64.efi',
};

/** SIDUS's NFS mount options for a shared root (see SIDUS-NOTES.md). */
export const DEFAULT_NFS_OPTIONS = 'vers=3,rsize=1048576,wsize=1048576,tcp,nolock,noatime,nocto,actimeo=1,hard';

export function loadConfig(file: string): SiderealConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError('(yaml)', `${file} is not valid YAML: ${(e as Error).message}`);
  }
  return validateConfig(doc);
}

export function validateConfig(doc: unknown): SiderealConfig {
  if (!isObj(doc)) throw new ConfigError('(top)', `the file must be a YAML mapping, got ${describe(doc)}`);
  rejectUnknownKeys(doc, TOP_KEYS, '');
  const serverAddress = ipv4(doc, 'serverAddress', '');
  const iface = str(doc, 'interface', '', null);
  if (iface !== undefined && (iface.length > 15 || /[\s/]/.test(iface))) {
    throw new ConfigError('interface', `${describe(iface)} is not a valid interface name`);
  }
  const dataDir = absPath(doc, 'dataDir', '');
  const dhcp = dhcpSection(section(doc, 'dhcp', '', true)!, serverAddress);
  const tftpObj = section(doc, 'tftp', '', true)!;
  rejectUnknownKeys(tftpObj, ['enabled', 'root', 'port', 'maxBlksize', 'maxWindowsize', 'maxSessions', 'maxSessionsPerClient', 'maxTimeout', 'threads'], 'tftp');
  const httpObj = section(doc, 'http', '', false) ?? {};
  // fileCacheMiB: accepted and ignored since bodies go out with sendfile from the page cache (README).
  rejectUnknownKeys(httpObj, ['listen', 'port', 'publicUrl', 'threads', 'maxConnections', 'fileCacheMiB'], 'http');
  const httpListen = httpObj.listen === undefined ? serverAddress : ipv4(httpObj, 'listen', 'http');
  const httpPort = int(httpObj, 'port', 'http', 8080, 1, 65535);
  const publicUrl = (str(httpObj, 'publicUrl', 'http', null) ?? `http://${serverAddress}:${httpPort}`).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(publicUrl)) throw new ConfigError('http.publicUrl', `must start with http:// or https://, got ${describe(publicUrl)}`);
  const apiObj = section(doc, 'api', '', false) ?? {};
  rejectUnknownKeys(apiObj, ['enabled', 'listen', 'port', 'tls'], 'api');
  const tlsObj = section(apiObj, 'tls', 'api', false);
  if (tlsObj) rejectUnknownKeys(tlsObj, ['cert', 'key'], 'api.tls');
  const nfsObj = section(doc, 'nfs', '', false) ?? {};
  rejectUnknownKeys(nfsObj, ['server', 'options', 'backend', 'exportsFile', 'ganesha', 'home'], 'nfs');
  const ganeshaObj = section(nfsObj, 'ganesha', 'nfs', false) ?? {};
  rejectUnknownKeys(ganeshaObj, ['exportsFile', 'pidFile'], 'nfs.ganesha');
  const homeObj = section(nfsObj, 'home', 'nfs', false);
  if (homeObj) rejectUnknownKeys(homeObj, ['path'], 'nfs.home');
  const rootsObj = section(doc, 'roots', '', false) ?? {};
  rejectUnknownKeys(rootsObj, ['dir', 'cacheDir', 'recipes', 'proxy'], 'roots');
  const logObj = section(doc, 'log', '', false) ?? {};
  rejectUnknownKeys(logObj, ['level'], 'log');

  return {
    interface: iface,
    serverAddress,
    dataDir,
    dhcp,
    tftp: {
      enabled: bool(tftpObj, 'enabled', 'tftp', true),
      root: absPath(tftpObj, 'root', 'tftp'),
      port: int(tftpObj, 'port', 'tftp', 69, 1, 65535),
      // Unset: the MTU of the interface holding serverAddress minus IP, UDP and TFTP headers
      // (1468 on Ethernet), so a granted blksize never fragments (RFC 2348).
      maxBlksize: tftpObj.maxBlksize === undefined ? undefined : int(tftpObj, 'maxBlksize', 'tftp', 1468, 512, 65464),
      maxWindowsize: int(tftpObj, 'maxWindowsize', 'tftp', 64, 1, 65535),
      maxSessions: int(tftpObj, 'maxSessions', 'tftp', 1024, 1, 65535),
      maxSessionsPerClient: int(tftpObj, 'maxSessionsPerClient', 'tftp', 8, 1, 65535),
      maxTimeout: int(tftpObj, 'maxTimeout', 'tftp', 30, 1, 255),
      threads: int(tftpObj, 'threads', 'tftp', DEFAULT_TFTP_THREADS, 1, 64),
    },
    http: { listen: httpListen, port: httpPort, publicUrl, threads: int(httpObj, 'threads', 'http', DEFAULT_HTTP_THREADS, 1, 64), maxConnections: int(httpObj, 'maxConnections', 'http', 1024, 1, 1_000_000) },
    api: {
      enabled: bool(apiObj, 'enabled', 'api', true),
      listen: apiObj.listen === undefined ? '127.0.0.1' : ipv4(apiObj, 'listen', 'api'),
      port: int(apiObj, 'port', 'api', 8081, 1, 65535),
      ...(tlsObj ? { tls: { cert: absPath(tlsObj, 'cert', 'api.tls'), key: absPath(tlsObj, 'key', 'api.tls') } } : {}),
    },
    nfs: {
      server: nfsObj.server === undefined ? serverAddress : ipv4(nfsObj, 'server', 'nfs'),
      options: str(nfsObj, 'options', 'nfs', DEFAULT_NFS_OPTIONS)!,
      backend: oneOf(nfsObj, 'backend', 'nfs', ['kernel', 'ganesha', 'none'], 'none'),
      exportsFile: nfsObj.exportsFile === undefined ? '/etc/exports.d/sidereal.exports' : absPath(nfsObj, 'exportsFile', 'nfs'),
      ganesha: {
        exportsFile: ganeshaObj.exportsFile === undefined ? '/etc/ganesha/sidereal-exports.conf' : absPath(ganeshaObj, 'exportsFile', 'nfs.ganesha'),
        pidFile: ganeshaObj.pidFile === undefined ? '/run/ganesha/ganesha.pid' : absPath(ganeshaObj, 'pidFile', 'nfs.ganesha'),
      },
      ...(homeObj ? { home: { path: absPath(homeObj, 'path', 'nfs.home') } } : {}),
    },
    roots: {
      dir: rootsObj.dir === undefined ? '/srv/sidereal/roots' : absPath(rootsObj, 'dir', 'roots'),
      cacheDir: rootsObj.cacheDir === undefined ? '/var/cache/sidereal-build' : absPath(rootsObj, 'cacheDir', 'roots'),
      // `root build NAME` reads <recipes>/NAME.yaml; by default the recipes shipped with Sidereal.
      recipes: rootsObj.recipes === undefined ? path.join(installDir(), 'roots') : absPath(rootsObj, 'recipes', 'roots'),
      ...(rootsObj.proxy === undefined ? {} : { proxy: httpUrl(rootsObj, 'proxy', 'roots') }),
    },
    boot: bootSection(section(doc, 'boot', '', false) ?? {}),
    log: { level: oneOf(logObj, 'level', 'log', ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], 'info') },
    stopGraceSeconds: int(doc, 'stopGraceSeconds', '', 10, 0, 600),
  };
}

function dhcpSection(o: Obj, serverAddress: string): SiderealConfig['dhcp'] {
  const p = 'dhcp';
  rejectUnknownKeys(o, ['enabled', 'port', 'subnet', 'router', 'dns', 'domain', 'leaseTime', 'pool', 'unknownClients', 'relays', 'maxPacketsPerMac', 'maxPendingOffers', 'rogueCheckInterval', 'registeredPool', 'ackAfterFsync'], p);
  const subnet = cidr(o, 'subnet', p);
  if (!subnet.contains(serverAddress)) {
    throw new ConfigError('dhcp.subnet', `${subnet.text} does not contain serverAddress ${serverAddress}`);
  }
  const router = o.router === undefined ? undefined : ipv4(o, 'router', p);
  if (router && !subnet.contains(router)) throw new ConfigError('dhcp.router', `${router} is outside ${subnet.text}`);
  const domain = str(o, 'domain', p, null);
  if (domain !== undefined && !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(domain)) {
    throw new ConfigError('dhcp.domain', `${describe(domain)} is not a valid domain name`);
  }
  const thePool = pool(o, 'pool', p, subnet, serverAddress);
  const registeredPool = pool(o, 'registeredPool', p, subnet, serverAddress);
  if (thePool && registeredPool && toInt(registeredPool.start) <= toInt(thePool.end) && toInt(thePool.start) <= toInt(registeredPool.end)) {
    throw new ConfigError('dhcp.registeredPool', `${registeredPool.start}-${registeredPool.end} overlaps dhcp.pool ${thePool.start}-${thePool.end}`);
  }
  return {
    enabled: bool(o, 'enabled', p, true),
    port: int(o, 'port', p, 67, 1, 65535),
    subnet,
    router,
    dns: ipList(o, 'dns', p),
    domain,
    leaseTime: duration(o, 'leaseTime', p, 3600),
    pool: thePool,
    registeredPool,
    unknownClients: oneOf(o, 'unknownClients', p, ['pool', 'ignore'] as const, 'pool'),
    relays: relays(o, p),
    maxPacketsPerMac: int(o, 'maxPacketsPerMac', p, 10, 0, 100_000),
    maxPendingOffers: int(o, 'maxPendingOffers', p, 4096, 1, 1_000_000),
    rogueCheckInterval: duration(o, 'rogueCheckInterval', p, 300, 0),
    ackAfterFsync: bool(o, 'ackAfterFsync', p, true),
  };
}

function relays(o: Obj, p: string): RelaySubnet[] {
  const v = o.relays;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ConfigError(join(p, 'relays'), `must be a list, got ${describe(v)}`);
  return v.map((item, i) => {
    const where = join(join(p, 'relays'), i);
    if (!isObj(item)) throw new ConfigError(where, `must be a mapping, got ${describe(item)}`);
    rejectUnknownKeys(item, ['subnet', 'router', 'pool'], where);
    const subnet = cidr(item, 'subnet', where);
    const router = item.router === undefined ? undefined : ipv4(item, 'router', where);
    if (router && !subnet.contains(router)) throw new ConfigError(`${where}.router`, `${router} is outside ${subnet.text}`);
    return { subnet, router, pool: pool(item, 'pool', where, subnet, undefined) };
  });
}

function bootSection(o: Obj): SiderealConfig['boot'] {
  const p = 'boot';
  rejectUnknownKeys(o, ['files', 'defaults'], p);
  const files = { ...DEFAULT_BOOT_FILES };
  const f = section(o, 'files', p, false);
  if (f) {
    rejectUnknownKeys(f, Object.keys(DEFAULT_BOOT_FILES), 'boot.files');
    for (const arch of Object.keys(DEFAULT_BOOT_FILES) as ClientArch[]) {
      files[arch] = str(f, arch, 'boot.files', files[arch])!;
    }
  }
  const d = section(o, 'defaults', p, false) ?? {};
  rejectUnknownKeys(d, ['loader', 'bootMode', 'root', 'kernelArgs'], 'boot.defaults');
  return {
    files,
    defaults: {
      loader: oneOf(d, 'loader', 'boot.defaults', ['pxelinux', 'lpxelinux', 'ipxe'] as const, 'pxelinux'),
      bootMode: oneOf(d, 'bootMode', 'boot.defaults', ['root', 'maintenance', 'local'] as const, 'root'),
      root: str(d, 'root', 'boot.defaults', null),
      kernelArgs: str(d, 'kernelArgs', 'boot.defaults', '')!,
    },
  };
}

function ipv4(o: Obj, key: string, path: string): string {
  const v = o[key];
  const where = join(path, key);
  if (v === undefined || v === null) throw new ConfigError(where, 'is required');
  if (typeof v !== 'string' || !isIpv4(v)) throw new ConfigError(where, `${describe(v)} is not an IPv4 address`);
  return v;
}

function ipList(o: Obj, key: string, path: string): string[] {
  const v = o[key];
  const where = join(path, key);
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x, i) => {
    if (typeof x !== 'string' || !isIpv4(x)) throw new ConfigError(join(where, i), `${describe(x)} is not an IPv4 address`);
    return x;
  });
}

function cidr(o: Obj, key: string, path: string): Cidr {
  const v = o[key];
  const where = join(path, key);
  if (v === undefined || v === null) throw new ConfigError(where, 'is required');
  const c = typeof v === 'string' ? parseCidr(v) : undefined;
  if (!c) throw new ConfigError(where, `${describe(v)} is not an IPv4 network like 10.77.0.0/24`);
  if (c.prefix > 30) throw new ConfigError(where, `a /${c.prefix} has no room for clients`);
  return c;
}

function pool(o: Obj, key: string, path: string, subnet: Cidr, serverAddress: string | undefined): PoolRange | undefined {
  const v = section(o, key, path, false);
  if (!v) return undefined;
  const where = join(path, key);
  rejectUnknownKeys(v, ['start', 'end'], where);
  const start = ipv4(v, 'start', where);
  const end = ipv4(v, 'end', where);
  for (const [k, ip] of [['start', start], ['end', end]] as const) {
    if (!subnet.contains(ip)) throw new ConfigError(`${where}.${k}`, `${ip} is outside ${subnet.text}`);
    if (ip === subnet.network || ip === subnet.broadcast) {
      throw new ConfigError(`${where}.${k}`, `${ip} is the network or broadcast address of ${subnet.text}`);
    }
  }
  if (toInt(start) > toInt(end)) throw new ConfigError(where, `start ${start} is after end ${end}`);
  if (serverAddress && toInt(serverAddress) >= toInt(start) && toInt(serverAddress) <= toInt(end)) {
    throw new ConfigError(where, `the range contains serverAddress ${serverAddress}`);
  }
  return { start, end };
}

function bool(o: Obj, key: string, path: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(join(path, key), `must be true or false, got ${describe(v)}`);
  return v;
}

function absPath(o: Obj, key: string, path: string): string {
  const v = str(o, key, path);
  if (!isAbsolute(v)) throw new ConfigError(join(path, key), `must be an absolute path, got ${describe(v)}`);
  return v;
}

/** An HTTP proxy's URL: `http://host:port`, nothing after it. */
function httpUrl(o: Obj, key: string, path: string): string {
  const v = o[key];
  const where = join(path, key);
  let u: URL | undefined;
  try { u = typeof v === 'string' ? new URL(v) : undefined; } catch { /* below */ }
  if (!u || u.protocol !== 'http:' || u.pathname !== '/' || u.search || u.hash) throw new ConfigError(where, `must be an http:// URL of a proxy (http://host:port), got ${describe(v)}`);
  return v as string;
}

/** Seconds, or a string like `90s`, `30m`, `12h`, `7d`; at least `min` (a minute unless said). */
function duration(o: Obj, key: string, path: string, fallback: number, min = 60): number {
  const v = o[key];
  const where = join(path, key);
  if (v === undefined || v === null) return fallback;
  let seconds: number | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) seconds = v;
  else if (typeof v === 'string') {
    const m = /^(\d+)\s*([smhd]?)$/.exec(v.trim());
    if (m) seconds = Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!;
  }
  if (seconds === undefined) throw new ConfigError(where, `must be seconds or a duration like 12h, got ${describe(v)}`);
  if (seconds < min || seconds > 0xfffffffe) throw new ConfigError(where, `must be between ${min} s and 136 years, got ${seconds} s`);
  return seconds;
}
