/**
 * `sidereal serve`: the inventory, then DHCP, TFTP and HTTP, all reading the
 * inventory per request. Starting is all-or-nothing: if one service cannot
 * listen, the ones already up are closed and the error names the service.
 */
import type { SiderealConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { Inventory } from '../inventory/index.js';
import { networkPolicy } from './network.js';
import { InventoryDhcpBackend } from './backend.js';
import { serveBootPath, ipxeScriptFor } from '../boot/files.js';
import { startDhcpServer } from '../dhcp/server.js';
import { startTftpServer } from '../tftp/server.js';
import { buildHttpApp, type BootContext } from '../http/app.js';
import { buildApiApp } from '../http/api/app.js';
import { createSiderealMetrics } from '../metrics/sidereal-metrics.js';
import { registerMetricsRoute } from '../http/metrics-route.js';
import { setDefaultRunLogger } from '../run.js';
import { recoverLeftovers } from '../roots/chroot.js';
import { existsSync } from 'node:fs';
import { BuildJobs } from '../roots/jobs.js';
import { ExportManager } from '../nfs/manager.js';
import { nodeTracking } from './node-tracking.js';

export interface Daemon {
  inventory: Inventory;
  jobs: BuildJobs;
  close(): Promise<void>;
}

export async function startDaemon(config: SiderealConfig, logger: Logger): Promise<Daemon> {
  const startedAt = Date.now();
  setDefaultRunLogger(logger.child({ svc: 'run' }));
  await recoverRoots(config.roots.dir, logger);
  const inv = Inventory.open(config.dataDir, networkPolicy(config));
  const closers: Array<() => Promise<void>> = [async () => inv.close()];
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
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((e) => logger.error({ err: e }, 'close failed'));
  };
  const macOfPeer = (ip: string) => inv.leases.byIp(ip)?.mac ?? inv.machines.byIp(ip)?.mac;
  const metrics = createSiderealMetrics({
    activeLeases: () => inv.leases.activeCount(),
    machinesByState: () => inv.machines.countByMode(config.boot.defaults.bootMode),
    onCollectError: (metric, err) => logger.warn({ err, metric }, 'metrics collect failed'),
  });

  try {
    if (config.dhcp.enabled) {
      const dhcp = await startService('dhcp', () => startDhcpServer({
        interface: config.interface,
        address: '0.0.0.0',
        port: config.dhcp.port,
        serverId: config.serverAddress,
        subnet: config.dhcp.subnet,
        router: config.dhcp.router,
        dns: config.dhcp.dns,
        domain: config.dhcp.domain,
        leaseTime: config.dhcp.leaseTime,
        pool: config.dhcp.pool,
        unknownClients: config.dhcp.unknownClients,
        relays: config.dhcp.relays,
        backend: new InventoryDhcpBackend(inv, config),
        logger,
        metrics: metrics.dhcp,
      }));
      closers.push(() => dhcp.close());
    }

    if (config.tftp.enabled) {
      const tftpLog = logger.child({ svc: 'tftp' });
      const tftp = await startService('tftp', () => startTftpServer({
        address: config.serverAddress,
        port: config.tftp.port,
        maxBlksize: config.tftp.maxBlksize,
        maxWindowsize: config.tftp.maxWindowsize,
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
      closers.push(() => tftp.close());
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
      fileCacheBytes: config.http.fileCacheMiB * 1024 * 1024,
    };
    const app = buildHttpApp(ctx);
    await startService('http', () => app.listen({ host: config.http.listen, port: config.http.port }));
    closers.push(() => app.close());

    if (config.api.enabled) {
      const services = {
        dhcp: config.dhcp.enabled ? { interface: config.interface ?? null, port: config.dhcp.port } : null,
        tftp: config.tftp.enabled ? { address: config.serverAddress, port: config.tftp.port, root: config.tftp.root } : null,
        http: { url: config.http.publicUrl },
        nfs: () => exports.status(),
        api: { listen: config.api.listen, port: config.api.port },
      };
      const api = buildApiApp(inv, config, logger.child({ svc: 'api' }), { runtime: { startedAt, services }, jobs, onWrite: (what) => void exports.changed(what) });
      // Prometheus scrapes the admin listener (loopback by default), not the network the nodes share.
      registerMetricsRoute(api, metrics);
      await startService('api', () => api.listen({ host: config.api.listen, port: config.api.port }));
      closers.push(() => api.close());
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { inventory: inv, jobs, close };
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
