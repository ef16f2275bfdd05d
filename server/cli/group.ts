/** `sidereal group add|list|rm`: defaults machines inherit (machine > group > config). */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, cliActor, table } from './context.js';
import type { GroupInput } from '../inventory/index.js';

export async function groupCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const inv = ctx.inventory();
  switch (sub) {
    case 'add': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { root: { type: 'string' }, mode: { type: 'string' }, loader: { type: 'string' }, 'kernel-args': { type: 'string' } },
      });
      if (positionals.length !== 1) throw new UsageError('group add NAME [--root R] [--mode root|maintenance|local] [--loader pxelinux|lpxelinux|ipxe] [--kernel-args "..."]');
      const name = positionals[0]!;
      const g = inv.audited(cliActor(), 'group.put', name, () => {
        const before = inv.groups.get(name) ?? null;
        const after = inv.groups.put({
          name, root: values.root, bootMode: values.mode as GroupInput['bootMode'],
          loader: values.loader as GroupInput['loader'], kernelArgs: values['kernel-args'],
        });
        return { before, after, result: after };
      });
      ctx.out(ctx.json ? JSON.stringify(g) : `group ${g.name} saved`);
      return 0;
    }
    case 'list': {
      const groups = inv.groups.list();
      ctx.out(ctx.json ? JSON.stringify(groups) : table(groups.map((g) => ({ ...g, mode: g.bootMode })), ['name', 'root', 'mode', 'loader']));
      return 0;
    }
    case 'rm': {
      if (rest.length !== 1) throw new UsageError('group rm NAME');
      const g = inv.audited(cliActor(), 'group.delete', rest[0]!, () => {
        const before = inv.groups.remove(rest[0]!);
        return { before, after: null, result: before };
      });
      ctx.out(ctx.json ? JSON.stringify(g) : `removed group ${g.name}`);
      return 0;
    }
    default:
      throw new UsageError('group add|list|rm');
  }
}
