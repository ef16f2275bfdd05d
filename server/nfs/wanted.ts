/**
 * The exports the inventory wants, computed afresh each time (nothing to keep in sync):
 *
 *  - each root's live tree (`nfsPath`, its `current` symlink resolved to the generation)
 *    read-only to the served subnets, and read-write to the root's one maintenance machine;
 *  - every older generation some machine was last told to boot, read-only, so a rebuild never
 *    pulls a root from under a running node (and read-write still to a maintenance machine
 *    running it);
 *  - `nfs.home`, read-write to the subnets.
 *
 * Options are SIDUS's: ro|rw,no_subtree_check,async,no_root_squash. A root whose tree is
 * missing is not exported and is reported.
 */
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import { maintenanceMachines } from '../inventory/maintenance.js';

export interface ExportClient {
  /** A CIDR (10.77.0.0/24) or one address as /32. */
  match: string;
  access: 'ro' | 'rw';
}

export interface WantedExport {
  path: string;
  /** The root it belongs to; null for nfs.home. */
  root: string | null;
  /** true: the root's live tree; false: an older generation kept for the machines booted from it. */
  live: boolean;
  /** Read-write clients first: NFS servers use the first client entry that matches. */
  clients: ExportClient[];
  /** Machines whose last boot used this path. */
  bootedBy: string[];
}

export interface ExportProblem {
  root: string;
  path: string;
  message: string;
}

export interface Wanted {
  exports: WantedExport[];
  problems: ExportProblem[];
}

/** `<dir>/current` -> `<dir>/gen-...`: what a node mounts. A plain directory is itself. Undefined when missing. */
export function resolveTree(nfsPath: string): string | undefined {
  try {
    return lstatSync(nfsPath).isSymbolicLink() ? realpathSync(nfsPath) : (existsSync(nfsPath) ? nfsPath : undefined);
  } catch {
    return undefined;
  }
}

export function wantedExports(inv: Inventory, config: SiderealConfig): Wanted {
  const subnets = [config.dhcp.subnet.text, ...config.dhcp.relays.map((r) => r.subnet.text)];
  const d = config.boot.defaults;
  const maintenance = new Map(maintenanceMachines(inv.db, { root: d.root ?? null, bootMode: d.bootMode })
    .filter((m) => m.ipv4).map((m) => [m.root, m]));
  const byPath = new Map<string, WantedExport>();
  const problems: ExportProblem[] = [];
  const add = (path: string, root: string | null, live: boolean) => {
    let e = byPath.get(path);
    if (!e) byPath.set(path, (e = { path, root, live, clients: subnets.map((match) => ({ match, access: 'ro' as const })), bootedBy: [] }));
    e.live ||= live;
    return e;
  };
  const grantRw = (e: WantedExport, ipv4: string) => {
    const match = `${ipv4}/32`;
    if (!e.clients.some((c) => c.match === match)) e.clients.unshift({ match, access: 'rw' });
  };

  const roots = new Map(inv.roots.list().map((r) => [r.name, r]));
  for (const r of roots.values()) {
    const tree = resolveTree(r.nfsPath);
    if (!tree) {
      problems.push({ root: r.name, path: r.nfsPath, message: `${r.nfsPath} does not exist: root ${r.name} is not exported` });
      continue;
    }
    const e = add(tree, r.name, true);
    const m = maintenance.get(r.name);
    if (m?.ipv4) grantRw(e, m.ipv4);
  }
  const exists = new Map<string, boolean>(); // hundreds of nodes share a handful of trees: stat each once
  const present = (p: string) => exists.get(p) ?? (exists.set(p, existsSync(p)), exists.get(p)!);
  for (const b of inv.nfs.boots()) {
    if (!roots.has(b.root) || !present(b.nfsPath)) continue; // root deleted, generation pruned
    const e = add(b.nfsPath, b.root, false);
    e.bootedBy.push(b.mac);
    const m = maintenance.get(b.root);
    if (b.mode === 'maintenance' && m?.mac === b.mac && m.ipv4) grantRw(e, m.ipv4);
  }
  if (config.nfs.home) {
    const home = config.nfs.home.path;
    if (existsSync(home)) {
      byPath.set(home, { path: home, root: null, live: true, clients: subnets.map((match) => ({ match, access: 'rw' as const })), bootedBy: [] });
    } else {
      problems.push({ root: '(home)', path: home, message: `nfs.home.path ${home} does not exist: not exported` });
    }
  }
  return { exports: [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path)), problems };
}
