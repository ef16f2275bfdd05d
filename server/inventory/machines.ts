/** Machines: one row per network card that may boot, keyed by its normalised MAC. */
import type { Db } from './db.js';
import { InventoryError } from './errors.js';
import { normalizeMac, MacError } from './mac.js';
import { assertMaintenanceRule } from './maintenance.js';
import { checkHostname, checkIpv4, checkBootMode, checkKernelArgs, checkName, type NetworkPolicy } from './checks.js';
import type { BootMode } from '../boot/types.js';

export interface Machine {
  mac: string;
  hostname: string | null;
  ipv4: string | null;
  group: string | null;
  root: string | null;
  bootMode: BootMode | null;
  kernelArgs: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Fields an admin sets; `null` clears one, `undefined` leaves it as it is. */
export interface MachineInput {
  hostname?: string | null;
  ipv4?: string | null;
  group?: string | null;
  root?: string | null;
  bootMode?: BootMode | null;
  kernelArgs?: string | null;
}

export interface MachineFilter {
  group?: string;
  root?: string;
  status?: 'online' | 'offline';
  limit?: number;
  offset?: number;
}

interface Row {
  mac: string; hostname: string | null; ipv4: string | null; group_name: string | null; root: string | null;
  boot_mode: BootMode | null; kernel_args: string | null; created_at: number; updated_at: number;
}

const toMachine = (r: Row): Machine => ({
  mac: r.mac, hostname: r.hostname, ipv4: r.ipv4, group: r.group_name, root: r.root,
  bootMode: r.boot_mode, kernelArgs: r.kernel_args, createdAt: r.created_at, updatedAt: r.updated_at,
});

export function parseMac(input: string): string {
  try {
    return normalizeMac(input);
  } catch (e) {
    if (e instanceof MacError) throw new InventoryError('invalid', 'mac', e.message.replace(/^mac: /, ''));
    throw e;
  }
}

export class Machines {
  private readonly byMacStmt;
  private readonly byIpStmt;
  private readonly byHostStmt;

  constructor(private readonly db: Db, private network?: NetworkPolicy) {
    this.byMacStmt = db.prepare<[string], Row>('SELECT * FROM machines WHERE mac = ?');
    this.byIpStmt = db.prepare<[string], Row>('SELECT * FROM machines WHERE ipv4 = ?');
    this.byHostStmt = db.prepare<[string], Row>('SELECT * FROM machines WHERE hostname = ?');
  }

  /** The served subnets and pools changed (a config reload): addresses are checked against these from now on. */
  setNetwork(network: NetworkPolicy | undefined): void {
    this.network = network;
  }

  get(mac: string): Machine | undefined {
    const r = this.byMacStmt.get(mac);
    return r ? toMachine(r) : undefined;
  }

  byIp(ipv4: string): Machine | undefined {
    const r = this.byIpStmt.get(ipv4);
    return r ? toMachine(r) : undefined;
  }

  /**
   * Machines by host name, filtered and paginated. `status`: `online` has a
   * bound, unexpired lease; `offline` has none.
   */
  page(filter: MachineFilter = {}): { items: Machine[]; total: number } {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (filter.group) { where.push('m.group_name = ?'); args.push(filter.group); }
    if (filter.root) { where.push('m.root = ?'); args.push(filter.root); }
    if (filter.status) {
      const online = "EXISTS (SELECT 1 FROM leases l WHERE l.mac = m.mac AND l.state = 'bound' AND l.expires_at > ?)";
      where.push(filter.status === 'online' ? online : `NOT ${online}`);
      args.push(Date.now());
    }
    const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (this.db.prepare(`SELECT count(*) AS n FROM machines m ${cond}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT m.* FROM machines m ${cond} ORDER BY m.hostname IS NULL, m.hostname, m.mac LIMIT ? OFFSET ?`)
      .all(...args, filter.limit ?? -1, filter.offset ?? 0) as Row[];
    return { items: rows.map(toMachine), total };
  }

  list(filter: MachineFilter = {}): Machine[] {
    return this.page(filter).items;
  }

  /** Machines counted by boot mode as they resolve (machine, else group, else `fallback`): for metrics. */
  countByMode(fallback: BootMode): Array<{ state: string; count: number }> {
    return this.db.prepare(`SELECT COALESCE(m.boot_mode, g.boot_mode, ?) AS state, count(*) AS count
      FROM machines m LEFT JOIN groups g ON g.name = m.group_name GROUP BY 1 ORDER BY 1`).all(fallback) as Array<{ state: string; count: number }>;
  }

  add(macInput: string, input: MachineInput): Machine {
    const mac = parseMac(macInput);
    const v = this.check(input);
    return this.db.transaction(() => {
      const existing = this.get(mac);
      if (existing) throw new InventoryError('conflict', 'mac', `${mac} is already registered${existing.hostname ? ` as ${existing.hostname}` : ''}`);
      this.checkUnique(mac, v);
      this.checkRefs(v);
      const now = Date.now();
      this.db.prepare(`INSERT INTO machines (mac, hostname, ipv4, group_name, root, boot_mode, kernel_args, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(mac, v.hostname ?? null, v.ipv4 ?? null, v.group ?? null, v.root ?? null,
        v.bootMode ?? null, v.kernelArgs ?? null, now, now);
      assertMaintenanceRule(this.db, this.network?.bootDefaults);
      return this.get(mac)!;
    }).immediate();
  }

  update(macInput: string, input: MachineInput): Machine {
    const mac = parseMac(macInput);
    const v = this.check(input);
    return this.db.transaction(() => {
      const cur = this.get(mac);
      if (!cur) throw new InventoryError('not_found', 'mac', `${mac} is not registered`);
      this.checkUnique(mac, v);
      this.checkRefs(v);
      const next = {
        hostname: v.hostname === undefined ? cur.hostname : v.hostname,
        ipv4: v.ipv4 === undefined ? cur.ipv4 : v.ipv4,
        group: v.group === undefined ? cur.group : v.group,
        root: v.root === undefined ? cur.root : v.root,
        bootMode: v.bootMode === undefined ? cur.bootMode : v.bootMode,
        kernelArgs: v.kernelArgs === undefined ? cur.kernelArgs : v.kernelArgs,
      };
      this.db.prepare(`UPDATE machines SET hostname = ?, ipv4 = ?, group_name = ?, root = ?, boot_mode = ?, kernel_args = ?, updated_at = ?
        WHERE mac = ?`).run(next.hostname, next.ipv4, next.group, next.root, next.bootMode, next.kernelArgs, Date.now(), mac);
      assertMaintenanceRule(this.db, this.network?.bootDefaults);
      return this.get(mac)!;
    }).immediate();
  }

  remove(macInput: string): Machine {
    const mac = parseMac(macInput);
    return this.db.transaction(() => {
      const cur = this.get(mac);
      if (!cur) throw new InventoryError('not_found', 'mac', `${mac} is not registered`);
      this.db.prepare('DELETE FROM machines WHERE mac = ?').run(mac);
      return cur;
    }).immediate();
  }

  private check(input: MachineInput): MachineInput {
    const out: MachineInput = {};
    if (input.hostname !== undefined) out.hostname = input.hostname === null ? null : checkHostname(input.hostname);
    if (input.ipv4 !== undefined) out.ipv4 = input.ipv4 === null ? null : checkIpv4(input.ipv4, this.network);
    if (input.group !== undefined) out.group = input.group === null ? null : checkName('group', input.group);
    if (input.root !== undefined) out.root = input.root === null ? null : checkName('root', input.root);
    if (input.bootMode !== undefined) out.bootMode = input.bootMode === null ? null : checkBootMode(input.bootMode);
    if (input.kernelArgs !== undefined) out.kernelArgs = input.kernelArgs === null ? null : checkKernelArgs('kernelArgs', input.kernelArgs);
    return out;
  }

  private checkUnique(mac: string, v: MachineInput): void {
    if (v.hostname) {
      const holder = this.byHostStmt.get(v.hostname);
      if (holder && holder.mac !== mac) throw new InventoryError('conflict', 'hostname', `${v.hostname} is held by ${holder.mac}`);
    }
    if (v.ipv4) {
      const holder = this.byIpStmt.get(v.ipv4);
      if (holder && holder.mac !== mac) {
        throw new InventoryError('conflict', 'ipv4', `${v.ipv4} is held by ${holder.hostname ?? holder.mac} (${holder.mac})`);
      }
      // A dynamic lease on that address belongs to another client right now: taking it would give two nodes one address.
      const lease = this.db.prepare<[string, number], { mac: string }>(
        "SELECT mac FROM leases WHERE ipv4 = ? AND state = 'bound' AND expires_at > ?").get(v.ipv4, Date.now());
      if (lease && lease.mac !== mac) throw new InventoryError('conflict', 'ipv4', `${v.ipv4} is leased to ${lease.mac} until its lease ends`);
    }
  }

  private checkRefs(v: MachineInput): void {
    if (v.root && !this.db.prepare('SELECT 1 FROM roots WHERE name = ?').get(v.root)) {
      throw new InventoryError('unknown_reference', 'root', `no root named ${v.root}`);
    }
    if (v.group && !this.db.prepare('SELECT 1 FROM groups WHERE name = ?').get(v.group)) {
      throw new InventoryError('unknown_reference', 'group', `no group named ${v.group}`);
    }
  }
}
