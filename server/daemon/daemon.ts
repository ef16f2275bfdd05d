/**
 * `sidereal serve`: the inventory, then DHCP, TFTP and HTTP, all reading the
 * inventory per request. Starting is all-or-nothing: if one service cannot
 * listen, the ones already up are closed and the error names the service.
 */
import type { SiderealConfig } from '../config/config.js';
import { ConfigError } from '../config/validate.js';
import type { Logger } from '../log.js';
import { BackgroundCheckpointer, Inventory } from '../inventory/index.js';
import { networkPolicy } from './network.js';
import { dhcpPolicy, InventoryDhcpBackend } from './backend.js';
import { serveBootPath, ipxeScriptFor } from '../boot/files.js';
import { startDhcpServer } from '../dhcp/server.js';
import { RogueServers, rogueProbeMac, startRogueCheck } from '../dhcp/rogue.js';
import { startTftpServer } from '../tftp/server.js';
import { buildHttpApp, type BootContext } from '../http/app.js';
import { buildApiApp } from '../http/api/app.js';
import { createSiderealMetrics } from '../metrics/sidereal-metrics.js';
import { registerMetricsRoute } from '../http/metrics-route.js';
import { setDefaultRunLogger } from '../run.js';
import { recoverLeftovers } from '../roots/chroot.js';
import { existsSync, readFileSync } from 'node:fs';
import { BuildJobs } from '../roots/jobs.js';
import { ExportManager } from '../nfs/manager.js';
import { nodeTracking } from './node-tracking.js';
import { descriptorsNeeded, openFilesLimit, openFilesProblem } from './limits.js';

export interface Daemon {
  inventory: Inventory;
  jobs: BuildJobs;
  /** The config the services run with now. */
  readonly config: SiderealConfig;
  /**
   * Restart DHCP, TFTP, HTTP and the API with `next` (transfers in flight get
   * next.stopGraceSeconds to finish). Throws a ConfigError, changing nothing, when `next`
   * changes what only a restart can (dataDir, roots, nfs); if the new services cannot
   * start, the old config serves again and the error is thrown (with `fatal: true` when
   * the old one cannot start again either: nothing serves).
   */
  reload(next: SiderealConfig): Promise<void>;
  /** Stop the services (transfers in flight get `graceMs`, default 0), store what is queued, close the inventory. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

export interface DaemonOptions {
  /** `serve --insecure`: let the admin API listen on a non-loopback address without TLS. */
  insecureApi?: boolean;
}

/** A failure that repeats while a disk fails is counted each time and logged the first time, then one in a hundred. */
const worthLogging = (failures: number) => failures % 100 === 1;

export async function startDaemon(config: SiderealConfig, logger: Logger, options: DaemonOptions = {}): Promise<Daemon> {
  const startedAt = Date.now();
  setDefaultRunLogger(logger.child({ svc: 'run' }));
  await recoverRoots(config.roots.dir, logger);
  const inv = Inventory.open(config.dataDir, networkPolicy(config));
  const closers: Array<() => Promise<void>> = [async () => inv.close()];
  if (config.dataDir !== ':memory:') {
    // Checkpoints off the event loop (inventory/checkpointer.ts); closed before the inventory.
    const ckptLog = logger.child({ svc: 'inventory' });
    const checkpointer = new BackgroundCheckpointer(inv.db, {
      onError: (err, fatal, failures) => {
        if (fatal) ckptLog.error({ err }, 'the WAL checkpoint thread failed: checkpoints run on the event loop again');
        // One a second while the disk fails (RETRY_MS).
        else if (worthLogging(failures)) ckptLog.warn({ err, failures }, 'WAL checkpoint failed');
      },
    });
    closers.push(() => checkpointer.close());
  }
  // Builds a crash left running are marked failed and their half-built generations removed,
  // after recoverRoots undid their mounts; a running build is cancelled (and cleaned) on close.
  const jobs = new BuildJobs(inv, config, logger.child({ svc: 'build' }));
  const interrupted = await jobs.recover();
  if (interrupted.length > 0) logger.warn({ builds: interrupted.map((b) => b.id) }, 'builds interrupted by a crash marked failed');
  closers.push(() => jobs.close());
  // NFS exports follow the inventory; a failing NFS backend is reported, never fatal.
  const exports = new ExportManager(inv, config, logger.child({ svc: 'nfs' }));
  await exports.start();
  closers.push(() => exports.close());
  const nodes = nodeTracking(inv, exports, logger.child({ svc: 'http' }));
  const closeCore = async () => {
    for (const c of closers.reverse()) await c().catch((e) => logger.error({ err: e }, 'close failed'));
  };
  const macOfPeer = (ip: string) => inv.leases.byIp(ip)?.mac ?? inv.machines.byIp(ip)?.mac;
  /** The config the services run with: `config` until a reload. */
  let running: SiderealConfig = config;
  // What the rogue DHCP check has seen outlives a reload that restarts the check.
  const rogue = new RogueServers();
  const metrics = createSiderealMetrics({
    rogueDhcpServers: () => rogue.active().length,
    activeLeases: () => inv.leases.activeCount(),
    machinesByState: () => inv.machines.countByMode(running.boot.defaults.bootMode),
    onCollectError: (metric, err) => logger.warn({ err, metric }, 'metrics collect failed'),
  });

  /**
   * DHCP, TFTP, HTTP and the API: what a config reload restarts. Starting is all-or-nothing:
   * if one cannot listen, the ones already up are closed and the error names the service.
   */
  const startServices = async (config: SiderealConfig): Promise<(graceMs: number) => Promise<void>> => {
    // Checked before anything listens: an API that would expose tokens never starts.
    const https = config.api.enabled ? apiTls(config, options, logger) : undefined;
    const limit = openFilesLimit();
    const files = openFilesProblem(config, limit);
    if (files) logger.warn({ limit, need: descriptorsNeeded(config) }, files);
    const services: Array<(graceMs: number) => Promise<void>> = [];
    // All at once: TFTP and HTTP drain their transfers side by side.
    const stop = async (graceMs: number) => {
      await Promise.all(services.map((c) => c(graceMs).catch((e: unknown) => logger.error({ err: e }, 'close failed'))));
    };
    try {
      if (config.dhcp.enabled) {
        const dhcp = await startService('dhcp', () => startDhcpServer({
          ...dhcpPolicy(config),
          interface: config.interface,
          address: '0.0.0.0',
          port: config.dhcp.port,
          maxPacketsPerMac: config.dhcp.maxPacketsPerMac,
          ignoreMacs: [rogueProbeMac(config.serverAddress)],
          backend: new InventoryDhcpBackend(inv, config, {
            recordEvents: true,
            // A failing disk fails every fsync.
            onLeaseSyncError: (err, failures) => {
              if (worthLogging(failures)) logger.error({ err, failures }, 'lease fsync after the ACKs failed (dhcp.ackAfterFsync false): the leases are in the WAL, the next fsync retries');
            },
          }),
          logger,
          metrics: metrics.dhcp,
        }));
        // Closing stores the leases of the last turn (group commit) before the socket goes.
        services.push(() => dhcp.close());
        const check = await startRogueDhcpCheck(config, rogue, metrics.rogueDhcpReply, logger);
        if (check) services.push(() => check.close());
      }

      if (config.tftp.enabled) {
        const tftpLog = logger.child({ svc: 'tftp' });
        const tftp = await startService('tftp', () => startTftpServer({
          address: config.serverAddress,
          port: config.tftp.port,
          maxBlksize: config.tftp.maxBlksize,
          maxWindowsize: config.tftp.maxWindowsize,
          maxSessions: config.tftp.maxSessions,
          maxSessionsPerClient: config.tftp.maxSessionsPerClient,
          maxTimeoutS: config.tftp.maxTimeout,
          threads: config.tftp.threads,
          logger: tftpLog,
          // The peer's lease names the machine, so every transfer's log line and boot event carry its MAC.
          resolve: (path, peer) => {
            const served = serveBootPath(inv, config, path);
            if (served.kind !== 'missing' && !served.mac) served.mac = macOfPeer(peer.address);
            if (served.kind !== 'missing') nodes.noteBoot(served, served.mac);
            return served;
          },
          onTransfer: (ev) => {
            metrics.tftp.transfer(ev);
            const mac = ev.mac;
            if (mac && ev.outcome !== 'aborted-probe') {
              inv.events.recordSoon(mac, 'tftp', { file: ev.file, bytes: ev.bytes, ms: ev.ms, outcome: ev.outcome, blksize: ev.blksize, windowsize: ev.windowsize });
            }
          },
        }));
        metrics.tftp.watch(tftp);
        services.push((graceMs) => tftp.close(graceMs));
      }

      const httpLog = logger.child({ svc: 'http' });
      const ctx: BootContext = {
        logger: httpLog,
        serve: (path) => {
          const served = serveBootPath(inv, config, path);
          if (served.kind !== 'missing') nodes.noteBoot(served, served.mac);
          return served;
        },
        ipxeScript: (mac) => {
          const served = ipxeScriptFor(inv, config, mac);
          nodes.noteBoot(served, mac);
          return served;
        },
        macOfPeer,
        recordFetch: (mac, file, bytes, status, reason) => {
          metrics.http.fetch(file.startsWith('boot/') && file.endsWith('.ipxe') ? 'ipxe' : 'file', status, bytes);
          // A refusal (traversal, symlink out of the root) is worth a warning; a plain miss is not.
          httpLog[reason?.startsWith('refused') ? 'warn' : 'info']({ mac, file, bytes, status, ...(reason ? { reason } : {}) }, 'http fetch');
          if (mac) inv.events.recordSoon(mac, 'http', { file, bytes, status });
        },
        checkBooted: nodes.checkReport,
        recordBooted: nodes.recordBooted,
        recordAlive: nodes.recordAlive,
        sendfileThreads: config.http.threads,
        maxConnections: config.http.maxConnections,
      };
      const app = buildHttpApp(ctx);
      await startService('http', () => app.listen({ host: config.http.listen, port: config.http.port }));
      services.push((graceMs) => closeHttp(app, graceMs));

      if (config.api.enabled) {
        const listening = {
          dhcp: config.dhcp.enabled ? { interface: config.interface ?? null, port: config.dhcp.port } : null,
          tftp: config.tftp.enabled ? { address: config.serverAddress, port: config.tftp.port, root: config.tftp.root } : null,
          http: { url: config.http.publicUrl },
          nfs: () => exports.status(),
          rogueDhcp: () => rogue.status(),
          api: { listen: config.api.listen, port: config.api.port },
        };
        const api = buildApiApp(inv, config, logger.child({ svc: 'api' }), { runtime: { startedAt, services: listening }, jobs, ...(https ? { https } : {}), onWrite: (what) => void exports.changed(what) });
        // Prometheus scrapes the admin listener (loopback by default), not the network the nodes share.
        registerMetricsRoute(api, metrics);
        await startService('api', () => api.listen({ host: config.api.listen, port: config.api.port }));
        services.push((graceMs) => closeHttp(api, graceMs));
      }
    } catch (e) {
      await stop(0);
      throw e;
    }
    return stop;
  };

  let stopServices: (graceMs: number) => Promise<void>;
  try {
    stopServices = await startServices(config);
  } catch (e) {
    await closeCore();
    throw e;
  }
  let closed = false;
  return {
    inventory: inv,
    jobs,
    get config() {
      return running;
    },
    async reload(next: SiderealConfig) {
      const fixed = needsRestart(running, next);
      if (fixed.length > 0) throw new ConfigError(fixed[0]!, `changed, and needs a restart of sidereal serve (${fixed.join(', ')}); the running config stays`);
      await stopServices(next.stopGraceSeconds * 1000);
      inv.setNetwork(networkPolicy(next));
      try {
        stopServices = await startServices(next);
        running = next;
      } catch (e) {
        // The new config cannot listen (a port taken...): serve with the old one again.
        inv.setNetwork(networkPolicy(running));
        try {
          stopServices = await startServices(running);
        } catch (again) {
          stopServices = async () => {};
          throw Object.assign(new Error(`nothing serves: the new config failed (${(e as Error).message}), and the old one too (${(again as Error).message})`), { fatal: true });
        }
        throw e;
      }
    },
    async close(opts: { graceMs?: number } = {}) {
      if (closed) return;
      closed = true;
      await stopServices(opts.graceMs ?? 0);
      await closeCore();
    },
  };
}

/**
 * The admin API carries bearer tokens and can rebuild roots: anywhere but loopback it must be
 * TLS (api.tls), unless the admin says `serve --insecure` (a lab, a tunnel). The certificate
 * and key are read here, so a missing or unreadable file is an error naming the key.
 */
function apiTls(config: SiderealConfig, options: DaemonOptions, logger: Logger): { cert: Buffer; key: Buffer } | undefined {
  const tls = config.api.tls;
  if (!tls) {
    if (isLoopback(config.api.listen)) return undefined;
    if (!options.insecureApi) {
      throw new ConfigError('api.listen', `${config.api.listen} is not a loopback address, and the API carries admin tokens: give api.tls (cert and key), or run \`sidereal serve --insecure\``);
    }
    logger.warn({ listen: config.api.listen, port: config.api.port }, 'the admin API listens without TLS on a non-loopback address (--insecure)');
    return undefined;
  }
  const read = (key: 'cert' | 'key') => {
    try {
      return readFileSync(tls[key]);
    } catch (e) {
      throw new ConfigError(`api.tls.${key}`, `cannot read ${tls[key]}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  return { cert: read('cert'), key: read('key') };
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

/** Config keys the running core (inventory, builds, NFS exports) was opened with: a reload cannot change them. */
export function needsRestart(a: SiderealConfig, b: SiderealConfig): string[] {
  const keys: Array<[string, (c: SiderealConfig) => unknown]> = [
    ['dataDir', (c) => c.dataDir],
    ['roots', (c) => c.roots],
    ['nfs', (c) => c.nfs],
  ];
  return keys.filter(([, get]) => JSON.stringify(get(a)) !== JSON.stringify(get(b))).map(([k]) => k);
}

/**
 * Stop taking connections; let responses in flight finish for up to `graceMs`, then cut the
 * connections still open (a 60 MB initrd to a slow client must not hold a stop forever).
 */
async function closeHttp(app: { close(): Promise<unknown>; server: { closeAllConnections(): void } }, graceMs: number): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/**
 * The rogue DHCP check (server/dhcp/rogue.ts), when it can run: it needs the provisioning
 * interface, and its port 68 may be taken (a DHCP client on this host): then it is off, said
 * once, and DHCP serves all the same.
 */
async function startRogueDhcpCheck(config: SiderealConfig, record: RogueServers, onReply: () => void, logger: Logger) {
  const intervalS = config.dhcp.rogueCheckInterval;
  if (intervalS === 0) return undefined;
  if (!config.interface) {
    logger.info({ svc: 'dhcp' }, 'rogue DHCP check off: it needs `interface` (the probe must leave by the provisioning network only)');
    return undefined;
  }
  // Seen in neither of the last two probes (and their answers): no longer active.
  record.staleMs = 2 * intervalS * 1000 + 5000;
  try {
    return await startRogueCheck({
      interface: config.interface, ours: [config.serverAddress], probeMac: rogueProbeMac(config.serverAddress),
      intervalMs: intervalS * 1000, record, logger, onReply,
    });
  } catch (e) {
    logger.warn({ svc: 'dhcp', error: (e as Error).message }, 'rogue DHCP check off: cannot listen on port 68');
    return undefined;
  }
}

async function startService<T>(name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    throw new Error(`${name}: cannot start: ${(e as Error).message}`);
  }
}

/**
 * A build or a `root exec` killed with the daemon (or kill -9) leaves
 * /proc, /sys, /dev/pts mounted in a root tree, processes running in it and
 * policy-rc.d in place: undo all of it before serving, and say so.
 */
async function recoverRoots(dir: string, logger: Logger): Promise<void> {
  if (!existsSync(dir)) return;
  const report = await recoverLeftovers(dir, { logger });
  if (report.unmounted.length || report.killed.length || report.policyRemoved.length) {
    logger.warn({ rootsDir: dir, ...report }, 'recovered root trees left by a crash');
  }
}
