/**
 * One maintenance machine per root: the one node that mounts a root read-write (SIDUS's
 * "master"). Its mode and root resolve machine > group > config defaults, so a change to a
 * machine or a group can make a second one; the check runs inside that write's transaction and
 * refuses it. The read-write export goes to the machine's fixed address only, so it needs one.
 */
import type { Db } from './db.js';
import { InventoryError } from './errors.js';
import type { BootMode } from '../boot/types.js';

export interface BootDefaults {
  root: string | null;
  bootMode: BootMode;
}

export interface MaintenanceMachine {
  root: string;
  mac: string;
  hostname: string | null;
  ipv4: string | null;
}

/** Every machine whose mode resolves to maintenance and that has a root, by root then MAC. */
export function maintenanceMachines(db: Db, d: BootDefaults): MaintenanceMachine[] {
  return db.prepare(`SELECT COALESCE(m.root, g.root, ?) AS root, m.mac, m.hostname, m.ipv4
    FROM machines m LEFT JOIN groups g ON g.name = m.group_name
    WHERE COALESCE(m.boot_mode, g.boot_mode, ?) = 'maintenance' AND COALESCE(m.root, g.root, ?) IS NOT NULL
    ORDER BY 1, m.created_at, m.mac`).all(d.root, d.bootMode, d.root) as MaintenanceMachine[];
}

const who = (m: MaintenanceMachine) => (m.hostname ? `${m.hostname} (${m.mac})` : m.mac);

/** Throws when a root has two maintenance machines, or one without a fixed address. Call inside the write's transaction. */
export function assertMaintenanceRule(db: Db, d: BootDefaults | undefined): void {
  if (!d) return;
  const byRoot = new Map<string, MaintenanceMachine[]>();
  for (const m of maintenanceMachines(db, d)) {
    if (!m.ipv4) {
      throw new InventoryError('invalid', 'bootMode', `${who(m)} would boot ${m.root} in maintenance without a fixed ipv4: the read-write export goes to that address only; give it --ip first`);
    }
    byRoot.set(m.root, [...(byRoot.get(m.root) ?? []), m]);
  }
  for (const [root, ms] of byRoot) {
    if (ms.length > 1) {
      throw new InventoryError('conflict', 'bootMode', `root ${root} already has a maintenance machine, ${who(ms[0]!)}; only one machine may mount a root read-write (this change would also make ${ms.slice(1).map(who).join(', ')})`);
    }
  }
}
