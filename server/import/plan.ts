/**
 * The import plan: what a file would add, change, leave alone or refuse, and
 * why. The plan runs the inventory's own field checks (checks.ts, mac.ts) and
 * its uniqueness and reference rules, against a simulation of the inventory
 * that advances record by record in file order. applyImport then replays the
 * accepted records in that same order, in one transaction, through
 * `inv.machines.add`/`update`: so what the dry run accepts is what the real run
 * does, and a record that a later line frees an address for is judged exactly
 * as the sequential apply will meet it.
 */
import type { Inventory, Machine, MachineInput, NetworkPolicy } from '../inventory/index.js';
import { InventoryError } from '../inventory/index.js';
import { normalizeMac, MacError } from '../inventory/mac.js';
import { checkBootMode, checkHostname, checkIpv4, checkKernelArgs, checkName } from '../inventory/checks.js';
import type { ImportRecord } from './types.js';

type Field = keyof MachineInput;
const FIELDS: Field[] = ['hostname', 'ipv4', 'group', 'root', 'bootMode', 'kernelArgs'];

export interface FieldDiff { field: Field; before: string | null; after: string | null }

export interface PlanItem {
  line: number;
  /** Normalised. */
  mac: string;
  /** What add/update receives: for a change, only the fields that change. */
  input: MachineInput;
  /** add: every field set (before null); change: the fields that change; unchanged: empty. */
  diff: FieldDiff[];
  note?: string;
}

export interface Refusal { line: number; mac: string; field: string; reason: string }

export interface ImportPlan { add: PlanItem[]; change: PlanItem[]; unchanged: PlanItem[]; refuse: Refusal[] }

export interface PlanOptions {
  /** The policy the inventory was opened with (networkPolicy(config)); required so addresses are judged alike. */
  network: NetworkPolicy | undefined;
  /** Group and root for records that name none; an existing machine keeps a group or root it already has. */
  group?: string;
  root?: string;
}

/** The message of an inventory refusal without its `field: ` prefix (the refusal carries the field). */
const reasonOf = (e: Error) => e.message.replace(/^[^:]+: /, '');

type Holder = { mac: string; hostname: string | null };

export function planImport(inv: Inventory, records: ImportRecord[], opts: PlanOptions): ImportPlan {
  // A default that names nothing is a usage error, not one refusal per record.
  for (const field of ['group', 'root'] as const) {
    const name = opts[field];
    if (name === undefined) continue;
    checkName(field, name);
    if (!(field === 'group' ? inv.groups.get(name) : inv.roots.get(name))) throw new InventoryError('unknown_reference', field, `no ${field} named ${name}`);
  }
  const plan: ImportPlan = { add: [], change: [], unchanged: [], refuse: [] };
  // The simulated inventory: every machine's current address and name, updated as records are accepted.
  const state = new Map<string, { ipv4: string | null; hostname: string | null }>();
  const byIp = new Map<string, Holder>();
  const byHost = new Map<string, Holder>();
  const existing = new Map<string, Machine>();
  for (const m of inv.machines.list()) {
    existing.set(m.mac, m);
    state.set(m.mac, { ipv4: m.ipv4, hostname: m.hostname });
    if (m.ipv4) byIp.set(m.ipv4, m);
    if (m.hostname) byHost.set(m.hostname, m);
  }
  // First claims inside the file, accepted or not: a file that gives one value twice is ambiguous, the first line wins.
  const macLine = new Map<string, number>();
  const fileClaims = { ipv4: new Map<string, { line: number; mac: string }>(), hostname: new Map<string, { line: number; mac: string }>() };
  /** The later line, if any, that gives machine `mac` another `field`: applied in order, it comes too late. */
  const laterMove = (mac: string, after: number, field: 'hostname' | 'ipv4', value: string) => records.find((r) =>
    r.line > after && safeMac(r.mac) === mac && r[field] !== undefined && r[field]!.toLowerCase() !== value)?.line;

  for (const rec of records) {
    if (rec.refused) { plan.refuse.push({ line: rec.line, mac: rec.mac, ...rec.refused }); continue; }
    let mac: string;
    try {
      mac = normalizeMac(rec.mac);
    } catch (e) {
      if (!(e instanceof MacError)) throw e;
      plan.refuse.push({ line: rec.line, mac: rec.mac, field: 'mac', reason: reasonOf(e) });
      continue;
    }
    const first = macLine.get(mac);
    if (first !== undefined) {
      plan.refuse.push({ line: rec.line, mac, field: 'mac', reason: `${mac} appears again: line ${first} already imports it` });
      continue;
    }
    macLine.set(mac, rec.line);
    const cur = existing.get(mac);
    const refusals: Refusal[] = [];
    const refuse = (field: string, reason: string) => refusals.push({ line: rec.line, mac, field, reason });

    // The inventory's checks, field by field, in the order Machines.check runs them.
    const v: MachineInput = {};
    const check = (field: Field, raw: string | undefined, fn: (s: string) => string) => {
      if (raw === undefined) return;
      try {
        (v as Record<Field, string>)[field] = fn(raw);
      } catch (e) {
        if (!(e instanceof InventoryError)) throw e;
        refuse(e.field, reasonOf(e));
      }
    };
    check('hostname', rec.hostname, checkHostname);
    check('ipv4', rec.ipv4, (s) => checkIpv4(s, opts.network));
    check('group', rec.group ?? (cur?.group ? undefined : opts.group), (s) => checkName('group', s));
    check('root', rec.root ?? (cur?.root ? undefined : opts.root), (s) => checkName('root', s));
    check('bootMode', rec.bootMode, checkBootMode);
    check('kernelArgs', rec.kernelArgs, (s) => checkKernelArgs('kernelArgs', s));

    // Uniqueness: inside the file first (naming the first line), then against the simulated inventory (naming the
    // holder). A value another machine holds is no claim, so it cannot shut out the holder's own line further down.
    for (const field of ['hostname', 'ipv4'] as const) {
      const value = v[field];
      if (!value) continue;
      const claim = fileClaims[field].get(value);
      if (claim && claim.mac !== mac) { refuse(field, `${value} is also given to ${claim.mac} by line ${claim.line}; the first line wins`); continue; }
      const holder = (field === 'ipv4' ? byIp : byHost).get(value);
      if (holder && holder.mac !== mac) {
        const moved = laterMove(holder.mac, rec.line, field, value);
        refuse(field, `${value} is held by ${holder.hostname ?? holder.mac} (${holder.mac})` +
          (moved ? `; line ${moved} moves that machine off it, but after this line: put line ${moved} first` : ''));
        continue;
      }
      if (field === 'ipv4') {
        // Machines.add refuses an address a client holds a live dynamic lease on; refuse it here too.
        const lease = inv.leases.byIp(value);
        if (lease && lease.mac !== mac && lease.state === 'bound' && lease.expiresAt > Date.now()) {
          refuse('ipv4', `${value} is leased to ${lease.mac} until its lease ends`);
          continue;
        }
      }
      // Claimed even if this line is refused for another field: the file is ambiguous, and the first line wins.
      fileClaims[field].set(value, { line: rec.line, mac });
    }
    if (v.group && !inv.groups.get(v.group)) refuse('group', `no group named ${v.group}`);
    if (v.root && !inv.roots.get(v.root)) refuse('root', `no root named ${v.root}`);

    if (refusals.length) { plan.refuse.push(...refusals); continue; }

    const item: PlanItem = { line: rec.line, mac, input: {}, diff: [] };
    if (rec.note) item.note = rec.note;
    for (const field of FIELDS) {
      const after = v[field];
      if (after === undefined || after === null) continue;
      const before = cur ? cur[field] : null;
      if (before === after) continue;
      (item.input as Record<Field, string>)[field] = after;
      item.diff.push({ field, before, after });
    }
    if (!cur) plan.add.push(item);
    else if (item.diff.length) plan.change.push(item);
    else plan.unchanged.push(item);

    // Advance the simulation: the machine now holds its new address and name, and frees the old ones.
    const s = state.get(mac) ?? { ipv4: null, hostname: null };
    const holder: Holder = { mac, hostname: v.hostname ?? s.hostname };
    if (v.ipv4 && v.ipv4 !== s.ipv4) { if (s.ipv4) byIp.delete(s.ipv4); byIp.set(v.ipv4, holder); s.ipv4 = v.ipv4; }
    if (v.hostname && v.hostname !== s.hostname) { if (s.hostname) byHost.delete(s.hostname); byHost.set(v.hostname, holder); s.hostname = v.hostname; }
    state.set(mac, s);
  }
  return plan;
}

function safeMac(raw: string): string | undefined {
  try {
    return normalizeMac(raw);
  } catch {
    return undefined;
  }
}

/** An inventory refusal met while applying, naming the line of the file it came from. */
export class ImportApplyError extends InventoryError {
  constructor(readonly line: number, readonly mac: string, cause: InventoryError) {
    super(cause.code, cause.field, `line ${line} (${mac}): ${reasonOf(cause)}; nothing was imported`);
    this.name = 'ImportApplyError';
    this.cause = cause;
  }
}

export interface ApplyResult { added: Machine[]; changed: Array<{ before: Machine; after: Machine }> }

/**
 * Apply a plan's adds and changes in file order, in one transaction, each
 * with its audit record: all land or none. The inventory re-checks every
 * record (the plan may be stale: a root removed, an address taken since); the
 * first refusal rolls everything back and is rethrown naming its line.
 */
export function applyImport(inv: Inventory, plan: ImportPlan, opts: { actor?: string } = {}): ApplyResult {
  const actor = opts.actor ?? 'import';
  const steps = [...plan.add.map((item) => ({ kind: 'add' as const, item })), ...plan.change.map((item) => ({ kind: 'change' as const, item }))]
    .sort((a, b) => a.item.line - b.item.line);
  const result: ApplyResult = { added: [], changed: [] };
  // IMMEDIATE takes the write lock up front, so a concurrent writer waits (busy_timeout) instead of failing mid-import.
  // Machines.add/update open their own transactions: inside this one better-sqlite3 makes them savepoints.
  inv.db.transaction(() => {
    for (const { kind, item } of steps) {
      try {
        if (kind === 'add') {
          const after = inv.machines.add(item.mac, item.input);
          inv.audit.record(actor, 'machine.add', item.mac, null, after);
          result.added.push(after);
        } else {
          const before = inv.machines.get(item.mac);
          const after = inv.machines.update(item.mac, item.input);
          inv.audit.record(actor, 'machine.update', item.mac, before, after);
          result.changed.push({ before: before!, after });
        }
      } catch (e) {
        if (e instanceof InventoryError) throw new ImportApplyError(item.line, item.mac, e);
        throw new Error(`line ${item.line} (${item.mac}): ${(e as Error).message}; nothing was imported`, { cause: e });
      }
    }
  }).immediate();
  return result;
}
