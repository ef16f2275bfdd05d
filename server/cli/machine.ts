/** `sidereal machine add|list|show|set|rm|events`. */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, cliActor, table } from './context.js';
import { parseMac, type MachineInput } from '../inventory/index.js';
import { planFor } from '../boot/decide.js';
import type { BootMode } from '../boot/types.js';
import { formatTimeline } from './timeline.js';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { prepareImport, applyImport, describeImport } from '../import/index.js';
import { networkPolicy } from '../daemon/network.js';

const FIELDS = {
  hostname: { type: 'string' },
  ip: { type: 'string' },
  group: { type: 'string' },
  root: { type: 'string' },
  mode: { type: 'string' },
  'kernel-args': { type: 'string' },
} as const;

function input(v: Record<string, string | boolean | undefined>): MachineInput {
  // An empty value clears a field on `set` (e.g. --group '').
  const opt = (s: unknown) => (s === undefined ? undefined : s === '' ? null : String(s));
  return {
    hostname: opt(v.hostname), ipv4: opt(v.ip), group: opt(v.group), root: opt(v.root),
    bootMode: opt(v.mode) as BootMode | null | undefined, kernelArgs: opt(v['kernel-args']),
  };
}

export async function machineCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const inv = ctx.inventory();
  switch (sub) {
    case 'add':
    case 'set': {
      const { values, positionals } = parseArgs({ args: rest, options: FIELDS, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError(`machine ${sub} MAC [--hostname H] [--ip A.B.C.D] [--group G] [--root R] [--mode root|maintenance|local] [--kernel-args "..."]`);
      const mac = parseMac(positionals[0]!);
      const m = inv.audited(cliActor(), `machine.${sub === 'add' ? 'add' : 'update'}`, mac, () => {
        const before = inv.machines.get(mac) ?? null;
        const after = sub === 'add' ? inv.machines.add(mac, input(values)) : inv.machines.update(mac, input(values));
        return { before, after, result: after };
      });
      ctx.out(ctx.json ? JSON.stringify(m) : `${sub === 'add' ? 'registered' : 'updated'} ${m.mac}${m.hostname ? ` (${m.hostname})` : ''}`);
      return 0;
    }
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { group: { type: 'string' }, root: { type: 'string' } } });
      const list = inv.machines.list({ group: values.group, root: values.root });
      if (ctx.json) ctx.out(JSON.stringify(list));
      else ctx.out(table(list.map((m) => ({ ...m, mode: m.bootMode })), ['mac', 'hostname', 'ipv4', 'group', 'root', 'mode']));
      return 0;
    }
    case 'show': {
      const mac = one(rest, 'machine show MAC');
      const m = inv.machines.get(mac);
      if (!m) throw new UsageError(`mac: ${mac} is not registered`);
      const plan = planFor(inv, ctx.config(), mac);
      const lease = inv.leases.byMac(mac);
      const effective = { root: plan.root, bootMode: plan.bootMode, loader: plan.loader };
      if (ctx.json) {
        ctx.out(JSON.stringify({ machine: m, effective, lease: lease ?? null }));
      } else {
        ctx.out(`mac       ${m.mac}\nhostname  ${m.hostname ?? '-'}\nipv4      ${m.ipv4 ?? '-'}\ngroup     ${m.group ?? '-'}`);
        for (const [k, e] of Object.entries(effective)) ctx.out(`${k.padEnd(9)} ${e.value ?? '-'} (from ${e.from})`);
        ctx.out(`lease     ${lease ? `${lease.ipv4} ${lease.state} until ${new Date(lease.expiresAt).toISOString()}` : '-'}`);
      }
      return 0;
    }
    case 'rm': {
      const mac = one(rest, 'machine rm MAC');
      const m = inv.audited(cliActor(), 'machine.delete', mac, () => {
        const before = inv.machines.remove(mac);
        return { before, after: null, result: before };
      });
      ctx.out(ctx.json ? JSON.stringify(m) : `removed ${m.mac}`);
      return 0;
    }
    case 'import': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { 'dry-run': { type: 'boolean', default: false }, format: { type: 'string' }, group: { type: 'string' }, root: { type: 'string' } },
      });
      if (positionals.length !== 1) throw new UsageError('machine import FILE [--dry-run] [--format dhcpd|dnsmasq|ethers|csv] [--group G] [--root R]');
      const file = positionals[0]!;
      const prepared = prepareImport(inv, readFileSync(file, 'utf8'), {
        network: networkPolicy(ctx.config()), format: values.format, filename: basename(file), group: values.group, root: values.root,
      });
      if (values['dry-run']) {
        ctx.out(ctx.json ? JSON.stringify(prepared) : describeImport(prepared).join('\n'));
        return 0;
      }
      const applied = applyImport(inv, prepared.plan, { actor: cliActor() });
      const refused = prepared.plan.refuse.length + prepared.problems.length;
      ctx.out(ctx.json
        ? JSON.stringify({ added: applied.added.length, changed: applied.changed.length, refused: prepared.plan.refuse, problems: prepared.problems })
        : `imported: ${applied.added.length} added, ${applied.changed.length} changed, ${prepared.plan.unchanged.length} unchanged, ${refused} refused${refused ? ' (see --dry-run for why)' : ''}`);
      // A partial import is not a failure, but scripts must be able to tell.
      return refused ? 3 : 0;
    }
    case 'events': {
      const mac = one(rest, 'machine events MAC');
      const events = inv.events.list(mac);
      ctx.out(ctx.json ? JSON.stringify(events) : formatTimeline(events));
      return 0;
    }
    default:
      throw new UsageError('machine add|set|list|show|rm|import|events');
  }
}

function one(rest: string[], usage: string): string {
  const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError(usage);
  return parseMac(positionals[0]!);
}
