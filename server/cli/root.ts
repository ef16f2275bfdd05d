/** `sidereal root add|list|rm` (the root builder of issue 4 will fill these in from builds). */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, cliActor, table } from './context.js';
import type { RootInput } from '../inventory/index.js';

export async function rootCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const inv = ctx.inventory();
  switch (sub) {
    case 'add': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { arch: { type: 'string', default: 'amd64' }, kernel: { type: 'string' }, initrd: { type: 'string' }, 'nfs-path': { type: 'string' }, 'kernel-args': { type: 'string' } },
      });
      const usage = 'root add NAME --kernel FILE --initrd FILE --nfs-path /srv/... [--arch amd64|i386|arm64] [--kernel-args "..."]';
      if (positionals.length !== 1) throw new UsageError(usage);
      for (const k of ['kernel', 'initrd', 'nfs-path'] as const) if (!values[k]) throw new UsageError(`--${k} is required: ${usage}`);
      const name = positionals[0]!;
      const root = inv.audited(cliActor(), 'root.put', name, () => {
        const before = inv.roots.get(name) ?? null;
        const after = inv.roots.put({
          name, arch: values.arch as RootInput['arch'], kernel: values.kernel!, initrd: values.initrd!,
          nfsPath: values['nfs-path']!, kernelArgs: values['kernel-args'],
        });
        return { before, after, result: after };
      });
      ctx.out(ctx.json ? JSON.stringify(root) : `root ${root.name} saved`);
      return 0;
    }
    case 'list': {
      const roots = inv.roots.list();
      ctx.out(ctx.json ? JSON.stringify(roots) : table(roots.map((r) => ({ ...r, nfs: r.nfsPath })), ['name', 'arch', 'kernel', 'initrd', 'nfs']));
      return 0;
    }
    case 'rm': {
      if (rest.length !== 1) throw new UsageError('root rm NAME');
      const r = inv.audited(cliActor(), 'root.delete', rest[0]!, () => {
        const before = inv.roots.remove(rest[0]!);
        return { before, after: null, result: before };
      });
      ctx.out(ctx.json ? JSON.stringify(r) : `removed root ${r.name}`);
      return 0;
    }
    default:
      throw new UsageError('root add|list|rm');
  }
}
