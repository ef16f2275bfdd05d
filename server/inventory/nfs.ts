/** What the NFS export manager keeps: stable export ids, and the root path each machine last booted. */
import type { Db } from './db.js';

export interface MachineBoot {
  mac: string;
  root: string;
  nfsPath: string;
  mode: 'root' | 'maintenance';
  at: number;
}

export class NfsState {
  private readonly recordStmt;
  private readonly sameStmt;
  private readonly idStmt;
  constructor(private readonly db: Db) {
    this.idStmt = db.prepare<[string], { export_id: number }>('SELECT export_id FROM nfs_export_ids WHERE path = ?');
    this.recordStmt = db.prepare(`INSERT INTO machine_boots (mac, root, nfs_path, mode, at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(mac) DO UPDATE SET root = excluded.root, nfs_path = excluded.nfs_path, mode = excluded.mode, at = excluded.at`);
    this.sameStmt = db.prepare<[string, string, string], { n: number }>(
      'SELECT count(*) AS n FROM machine_boots WHERE mac = ? AND nfs_path = ? AND mode = ?');
  }

  /** The id of an export path: the one it had, else the lowest free one (1..65535). */
  exportId(path: string): number {
    // Read first: the manager asks for every export on each reconcile; a write lock only for a new path.
    const known = this.idStmt.get(path);
    if (known) return known.export_id;
    return this.db.transaction(() => {
      const had = this.idStmt.get(path);
      if (had) return had.export_id;
      // The lowest id not taken (ganesha reserves 0 for the pseudo root).
      const free = this.db.prepare<[], { id: number }>(`SELECT 1 AS id WHERE NOT EXISTS (SELECT 1 FROM nfs_export_ids WHERE export_id = 1)
        UNION ALL SELECT export_id + 1 FROM nfs_export_ids a WHERE export_id < 65535
          AND NOT EXISTS (SELECT 1 FROM nfs_export_ids b WHERE b.export_id = a.export_id + 1)
        ORDER BY 1 LIMIT 1`).get();
      if (!free) throw new Error('no NFS export id left (65535 in use)');
      this.db.prepare('INSERT INTO nfs_export_ids (path, export_id) VALUES (?, ?)').run(path, free.id);
      return free.id;
    }).immediate();
  }

  /**
   * A machine was handed a menu or script booting `nfsPath`. Returns true when that changed what
   * it boots (the exports may need updating); a repeat of the same writes nothing.
   */
  recordBoot(mac: string, root: string, nfsPath: string, mode: 'root' | 'maintenance'): boolean {
    if (this.sameStmt.get(mac, nfsPath, mode)!.n > 0) return false;
    this.recordStmt.run(mac, root, nfsPath, mode, Date.now());
    return true;
  }

  /**
   * A running node says which tree it has mounted (its heartbeat): that is the truth the menus
   * only predicted. Updates the time always; returns true when the tree changed.
   */
  recordRunning(mac: string, root: string, nfsPath: string, mode: 'root' | 'maintenance'): boolean {
    const changed = this.sameStmt.get(mac, nfsPath, mode)!.n === 0;
    this.recordStmt.run(mac, root, nfsPath, mode, Date.now());
    return changed;
  }

  boot(mac: string): MachineBoot | undefined {
    return this.db.prepare<[string], MachineBoot>('SELECT mac, root, nfs_path AS nfsPath, mode, at FROM machine_boots WHERE mac = ?').get(mac);
  }

  boots(): MachineBoot[] {
    return (this.db.prepare('SELECT mac, root, nfs_path AS nfsPath, mode, at FROM machine_boots ORDER BY mac').all() as MachineBoot[]);
  }

  /** Machines whose last boot used `nfsPath`. */
  bootedFrom(nfsPath: string): string[] {
    return this.db.prepare<[string], { mac: string }>('SELECT mac FROM machine_boots WHERE nfs_path = ? ORDER BY mac').all(nfsPath).map((r) => r.mac);
  }
}
