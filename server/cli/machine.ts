/** `sidereal machine add|set|list|show|rm|import|events`, through the admin API. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, table } from './context.js';
import { parseMac, type BootEvent, type Machine, type MachineInput } from '../inventory/index.js';
import type { BootMode } from '../boot/types.js';
import { formatTimeline } from './timeline.js';

const FIELDS = {
  hostname: { type: 'string' },
  ip: { type: 'string' },
  group: { type: 'string' },
  root: { type: 'string' },
  mode: { type: 'string' },
  'kernel-args': { type: 'string' },
} as const;

/** Only the fields given; an empty value clears a field on `set` (e.g. --group ''). */
function input(v: Record<string, string | boolean | undefined>): MachineInput {
  const out: Record<string, string | null> = {};
  const map: Record<string, keyof MachineInput> = { hostname: 'hostname', ip: 'ipv4', group: 'group', root: 'root', mode: 'bootMode', 'kernel-args': 'kernelArgs' };
  for (const [flag, field] of Object.entries(map)) {
    const value = v[flag];
    if (value !== undefined) out[field] = value === '' ? null : String(value);
  }
  return out as MachineInput & { bootMode?: BootMode | null };
}

const path = (mac: string) => `/api/v1/machines/${mac}`;

export async function machineCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add':
    case 'set': {
      const { values, positionals } = parseArgs({ args: rest, options: FIELDS, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError(`machine ${sub} MAC [--hostname H] [--ip A.B.C.D] [--group G] [--root R] [--mode root|maintenance|local] [--kernel-args "..."]`);
      const mac = parseMac(positionals[0]!);
      const m = sub === 'add'
        ? await ctx.api<Machine>('POST', '/api/v1/machines', { mac, ...input(values) })
        : await ctx.api<Machine>('PATCH', path(mac), input(values));
      ctx.out(ctx.json ? JSON.stringify(m) : `${sub === 'add' ? 'registered' : 'updated'} ${m.mac}${m.hostname ? ` (${m.hostname})` : ''}`);
      return 0;
    }
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { group: { type: 'string' }, root: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' }, offset: { type: 'string' } } });
      const q = new URLSearchParams(Object.entries(values).filter(([, v]) => v !== undefined) as Array<[string, string]>);
      const page = await ctx.api<{ items: Machine[]; total: number; limit: number; offset: number }>('GET', `/api/v1/machines?${q}`);
      if (ctx.json) ctx.out(JSON.stringify(page));
      else {
        ctx.out(table(page.items.map((m) => ({ ...m, mode: m.bootMode })), ['mac', 'hostname', 'ipv4', 'group', 'root', 'mode']));
        if (page.total > page.items.length) ctx.out(`(${page.offset + 1}-${page.offset + page.items.length} of ${page.total}: --offset, --limit)`);
      }
      return 0;
    }
    case 'show': {
      const s = await ctx.api<{ machine: Machine; effective: Record<string, { value: unknown; from: string }>; lease: { ipv4: string; state: string; expiresAt: number } | null; events: BootEvent[] }>('GET', path(one(rest, 'machine show MAC')));
      if (ctx.json) ctx.out(JSON.stringify(s));
      else {
        const m = s.machine;
        ctx.out(`mac       ${m.mac}\nhostname  ${m.hostname ?? '-'}\nipv4      ${m.ipv4 ?? '-'}\ngroup     ${m.group ?? '-'}`);
        for (const k of ['root', 'bootMode', 'loader']) {
          const e = s.effective[k]!;
          ctx.out(`${k.padEnd(9)} ${e.value ?? '-'} (from ${e.from})`);
        }
        const l = s.lease;
        ctx.out(`lease     ${l ? `${l.ipv4} ${l.state} until ${new Date(l.expiresAt).toISOString()}` : '-'}`);
        ctx.out(`last boot ${s.events.length ? new Date(s.events[s.events.length - 1]!.at).toISOString() : '-'}`);
      }
      return 0;
    }
    case 'rm': {
      const m = await ctx.api<Machine>('DELETE', path(one(rest, 'machine rm MAC')));
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
      const body = { text: readFileSync(file, 'utf8'), filename: basename(file), format: values.format, group: values.group, root: values.root, dryRun: values['dry-run'] };
      const r = await ctx.api<ImportAnswer>('POST', '/api/v1/import', body);
      if (ctx.json) ctx.out(JSON.stringify(r));
      else ctx.out(describeAnswer(r));
      // A partial import is not a failure, but scripts must be able to tell.
      const refused = r.dryRun ? r.plan!.refuse.length + r.problems.length : r.refused!.length + r.problems.length;
      return refused && !r.dryRun ? 3 : 0;
    }
    case 'events': {
      const mac = one(rest, 'machine events MAC');
      const r = await ctx.api<{ events: BootEvent[] }>('GET', `${path(mac)}/events`);
      ctx.out(ctx.json ? JSON.stringify(r.events) : formatTimeline(r.events));
      return 0;
    }
    default:
      throw new UsageError('machine add|set|list|show|rm|import|events');
  }
}

interface ImportAnswer {
  dryRun: boolean;
  format: string;
  problems: Array<{ line: number; message: string }>;
  plan?: { add: Item[]; change: Item[]; unchanged: Item[]; refuse: Array<{ line: number; mac: string; field: string; reason: string }> };
  refused?: Array<{ line: number; mac: string; field: string; reason: string }>;
  added?: number; changed?: number; unchanged?: number;
}
interface Item { line: number; mac: string; diff: Array<{ field: string; before: unknown; after: unknown }>; note?: string }

function describeAnswer(r: ImportAnswer): string {
  const lines: string[] = [];
  if (r.dryRun && r.plan) {
    for (const a of r.plan.add) lines.push(`add       line ${a.line}: ${a.mac}${a.note ? `  (${a.note})` : ''}`);
    for (const c of r.plan.change) lines.push(`change    line ${c.line}: ${c.mac} ${c.diff.map((d) => `${d.field} ${d.before ?? '-'} -> ${d.after ?? '-'}`).join(', ')}`);
    for (const x of r.plan.refuse) lines.push(`refuse    line ${x.line}: ${x.mac} ${x.field}: ${x.reason}`);
    for (const p of r.problems) lines.push(`unreadable line ${p.line}: ${p.message}`);
    lines.push(`${r.format}: ${r.plan.add.length} to add, ${r.plan.change.length} to change, ${r.plan.unchanged.length} unchanged, ${r.plan.refuse.length} refused, ${r.problems.length} unreadable`);
  } else {
    for (const x of r.refused ?? []) lines.push(`refused   line ${x.line}: ${x.mac} ${x.field}: ${x.reason}`);
    lines.push(`imported: ${r.added} added, ${r.changed} changed, ${r.unchanged} unchanged, ${(r.refused?.length ?? 0) + r.problems.length} refused or unreadable`);
  }
  return lines.join('\n');
}

function one(rest: string[], usage: string): string {
  const { positionals } = parseArgs({ args: rest, options: {}, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError(usage);
  return parseMac(positionals[0]!);
}
