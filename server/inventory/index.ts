/**
 * The inventory: the single source of truth every service reads. All SQL
 * lives in this folder. Readers query it per request (prepared statements
 * take microseconds), so a write by the CLI or the API is seen by the very
 * next DHCP, TFTP or HTTP request with no sync step and no restart.
 */
import { join } from 'node:path';
import { openDb, type Db } from './db.js';
import { Machines } from './machines.js';
import { Roots } from './roots.js';
import { Groups } from './groups.js';
import { Leases } from './leases.js';
import { Events } from './events.js';
import { Tokens } from './tokens.js';
import { Audit } from './audit.js';
import { DiscoveredMachines } from './discovered.js';
import { Builds } from './builds.js';
import { NfsState } from './nfs.js';
import type { NetworkPolicy } from './checks.js';

export { InventoryError } from './errors.js';
export { BackgroundCheckpointer } from './checkpointer.js';
export type { Machine, MachineInput, MachineFilter } from './machines.js';
export type { Root, RootInput } from './roots.js';
export type { Group, GroupInput } from './groups.js';
export type { LeaseRecord, FlushOptions } from './leases.js';
export type { BootEvent } from './events.js';
export type { TokenInfo, Role } from './tokens.js';
export type { AuditEntry } from './audit.js';
export type { Discovered, Sighting } from './discovered.js';
export type { Build, BuildState, BuildOutcome } from './builds.js';
export type { MachineBoot } from './nfs.js';
export type { NetworkPolicy } from './checks.js';
export { parseMac } from './machines.js';

export class Inventory {
  readonly machines: Machines;
  readonly roots: Roots;
  readonly groups: Groups;
  readonly leases: Leases;
  readonly events: Events;
  readonly tokens: Tokens;
  readonly audit: Audit;
  readonly discovered: DiscoveredMachines;
  readonly builds: Builds;
  readonly nfs: NfsState;

  constructor(readonly db: Db, network?: NetworkPolicy) {
    this.machines = new Machines(db, network);
    this.roots = new Roots(db);
    this.groups = new Groups(db, network?.bootDefaults);
    this.leases = new Leases(db);
    this.events = new Events(db);
    this.tokens = new Tokens(db);
    this.audit = new Audit(db);
    this.discovered = new DiscoveredMachines(db);
    this.builds = new Builds(db);
    this.nfs = new NfsState(db);
  }

  /** A config reload changed the served subnets, pools or boot defaults: check writes against the new ones. */
  setNetwork(network: NetworkPolicy | undefined): void {
    this.machines.setNetwork(network);
    this.groups.setBootDefaults(network?.bootDefaults);
  }

  static open(dataDir: string, network?: NetworkPolicy): Inventory {
    return new Inventory(openDb(dataDir === ':memory:' ? ':memory:' : join(dataDir, 'inventory.sqlite')), network);
  }

  /**
   * Run a write and its audit record in one transaction: both land or neither.
   * `fn` returns the record before and after (null for a creation or deletion).
   */
  audited<T>(actor: string, action: string, target: string, fn: () => { before: unknown; after: unknown; result: T }): T {
    return this.db.transaction(() => {
      const { before, after, result } = fn();
      this.audit.record(actor, action, target, before, after);
      return result;
    }).immediate();
  }

  close(): void {
    this.events.flushQueued();
    this.leases.close();
    this.db.close();
  }
}
