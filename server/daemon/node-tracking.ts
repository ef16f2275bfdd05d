/**
 * What the daemon learns about each node from the boot path and keeps for the NFS export
 * manager and the boot timeline:
 *  - the tree a menu or iPXE script sent a machine to (`noteBoot`);
 *  - the reports of the root's own units, `/boot/booted` and `/boot/alive`: believed only from
 *    the address Sidereal leased to that MAC, they close the timeline (kernel, nfs, booted) and
 *    say which generation the node has mounted (`noteRunning`), so it stays exported.
 */
import path from 'node:path';
import type { ServedFile } from '../boot/types.js';
import type { BootedReport } from '../http/booted-route.js';
import type { Inventory } from '../inventory/index.js';
import type { Logger } from '../log.js';
import type { ExportManager } from '../nfs/manager.js';
import { resolveTree } from '../nfs/wanted.js';
import { stageSeconds } from '../boot/timeline.js';

export function nodeTracking(inv: Inventory, exports: ExportManager, logger: Logger) {
  /** A menu or script sent a machine to a tree: remember it, so that tree stays exported while the machine may run it. */
  const noteBoot = (served: ServedFile, mac: string | undefined): void => {
    if (served.kind !== 'virtual' || !served.boots || !mac) return;
    if (inv.nfs.recordBoot(mac, served.boots.root, served.boots.nfsPath, served.boots.mode)) void exports.changed(`boot ${mac}`);
  };

  /** A node reported the tree it has mounted (root=nfs:<server>:<path>:<options>, from its /proc/cmdline). */
  const noteRunning = (mac: string, r: { root?: string }): boolean => {
    const m = /^nfs4?:[^:]+:([^:]+)/.exec(r.root ?? '');
    const known = m ? inv.nfs.boot(mac) : undefined;
    if (!m || !known) return false;
    // Only a generation of the root it was sent to: a report must not get any other path exported.
    const reported = path.normalize(m[1]!);
    const live = resolveTree(inv.roots.get(known.root)?.nfsPath ?? '');
    const sibling = !!live && path.dirname(reported) === path.dirname(live) && /^gen-[0-9TZ-]+$/.test(path.basename(reported));
    if (reported !== known.nfsPath && !sibling) {
      logger.warn({ mac, reported, root: known.root }, 'node reports a tree that is not a generation of its root: ignored');
      return false;
    }
    const changed = inv.nfs.recordRunning(mac, known.root, reported, known.mode);
    if (changed) void exports.changed(`running ${mac}`);
    return changed;
  };

  const checkReport = (mac: string, ip: string, peer: string): string | undefined => {
    if (ip !== peer) return `the report names ${ip} but comes from ${peer}`;
    const lease = inv.leases.byMac(mac);
    if (!lease || lease.ipv4 !== ip) return `${mac} holds no lease for ${ip}${lease ? ` (its lease is ${lease.ipv4})` : ''}`;
    return undefined;
  };

  /** The end of the timeline: kernel start (now - uptime), NFS root mounted (the hook's uptime), booted (now). */
  const recordBooted = (mac: string, r: BootedReport): void => {
    const now = Date.now();
    const kernelAt = now - r.uptime * 1000;
    const detail = { ip: r.ip, hostname: r.hostname ?? null, kernel: r.kernel ?? null, root: r.root ?? null, rootfs: r.rootfs ?? null, uptime: r.uptime };
    inv.events.record(mac, 'kernel', { kernel: r.kernel ?? null }, Math.round(kernelAt));
    if (r.nfsMountedAt !== undefined && r.nfsMountedAt <= r.uptime) {
      inv.events.record(mac, 'nfs', { root: r.root ?? null, uptime: r.nfsMountedAt }, Math.round(kernelAt + r.nfsMountedAt * 1000));
    }
    inv.events.record(mac, 'booted', detail, now);
    logger.info({ mac, ...detail, nfsMountedAt: r.nfsMountedAt ?? null, stages: stageSeconds(inv.events.list(mac, 200)) }, 'node booted');
    noteRunning(mac, r);
  };

  const recordAlive = (mac: string, r: BootedReport): void => {
    const changed = noteRunning(mac, r);
    // Every 30 s per node: a line only when something changed or is wrong.
    const level = r.nfs === 'error' ? 'warn' : changed ? 'info' : 'debug';
    logger[level]({ mac, ip: r.ip, root: r.root ?? null, nfs: r.nfs ?? null, uptime: r.uptime }, 'node alive');
  };

  return { noteBoot, checkReport, recordBooted, recordAlive };
}
