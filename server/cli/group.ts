/** `sidereal group add|set|list|show|rm`, through the admin API: defaults machines inherit. */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, table } from './context.js';
import type { Group } from '../inventory/index.js';

const OPTIONS = { root: { type: 'string' }, mode: { type: 'string' }, loader: { type: 'string' }, 'kernel-args': { type: 'string' } } as const;

function fields(v: Record<string, string | undefined>): Record<string, string | null> {
  const map: Record<string, string> = { root: 'root', mode: 'bootMode', loader: 'loader', 'kernel-args': 'kernelArgs' };
  const out: Record<string, string | null> = {};
  for (const [flag, field] of Object.entries(map)) if (v[flag] !== undefined) out[field] = v[flag] === '' ? null : v[flag]!;
  return out;
}

export async function groupCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const usage = `group ${sub} NAME [--root R] [--mode root|maintenance|local] [--loader pxelinux|lpxelinux|ipxe] [--kernel-args "..."]`;
  switch (sub) {
    case 'add':
    case 'set': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: OPTIONS });
      if (positionals.length !== 1) throw new UsageError(usage);
      const name = positionals[0]!;
      const g = sub === 'add'
        ? await ctx.api<Group>('POST', '/api/v1/groups', { name, ...fields(values) })
        : await ctx.api<Group>('PATCH', `/api/v1/groups/${encodeURIComponent(name)}`, fields(values));
      ctx.out(ctx.json ? JSON.stringify(g) : `group ${g.name} saved`);
      return 0;
    }
    case 'list': {
      const { items } = await ctx.api<{ items: Group[] }>('GET', '/api/v1/groups');
      ctx.out(ctx.json ? JSON.stringify(items) : table(items.map((g) => ({ ...g, mode: g.bootMode })), ['name', 'root', 'mode', 'loader']));
      return 0;
    }
    case 'show': {
      if (rest.length !== 1) throw new UsageError('group show NAME');
      const r = await ctx.api<{ group: Group; machines: string[] }>('GET', `/api/v1/groups/${encodeURIComponent(rest[0]!)}`);
      if (ctx.json) ctx.out(JSON.stringify(r));
      else {
        const g = r.group;
        ctx.out(`name      ${g.name}\nroot      ${g.root ?? '-'}\nboot mode ${g.bootMode ?? '-'}\nloader    ${g.loader ?? '-'}\nkernel    ${g.kernelArgs ?? '-'}\nmachines  ${r.machines.length ? r.machines.join(' ') : '-'}`);
      }
      return 0;
    }
    case 'rm': {
      if (rest.length !== 1) throw new UsageError('group rm NAME');
      const g = await ctx.api<Group>('DELETE', `/api/v1/groups/${encodeURIComponent(rest[0]!)}`);
      ctx.out(ctx.json ? JSON.stringify(g) : `removed group ${g.name}`);
      return 0;
    }
    default:
      throw new UsageError('group add|set|list|show|rm');
  }
}
