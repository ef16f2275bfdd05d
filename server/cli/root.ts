/** `sidereal root add|list|rm`, through the admin API (the root builder of issue 4 will fill these in from builds). */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, table } from './context.js';
import type { Root } from '../inventory/index.js';

export async function rootCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { arch: { type: 'string', default: 'amd64' }, kernel: { type: 'string' }, initrd: { type: 'string' }, 'nfs-path': { type: 'string' }, 'kernel-args': { type: 'string' } },
      });
      const usage = 'root add NAME --kernel FILE --initrd FILE --nfs-path /srv/... [--arch amd64|i386|arm64] [--kernel-args "..."]';
      if (positionals.length !== 1) throw new UsageError(usage);
      for (const k of ['kernel', 'initrd', 'nfs-path'] as const) if (!values[k]) throw new UsageError(`--${k} is required: ${usage}`);
      const root = await ctx.api<Root>('PUT', `/api/v1/roots/${encodeURIComponent(positionals[0]!)}`, {
        arch: values.arch, kernel: values.kernel, initrd: values.initrd, nfsPath: values['nfs-path'],
        ...(values['kernel-args'] !== undefined ? { kernelArgs: values['kernel-args'] } : {}),
      });
      ctx.out(ctx.json ? JSON.stringify(root) : `root ${root.name} saved`);
      return 0;
    }
    case 'list': {
      const { items } = await ctx.api<{ items: Root[] }>('GET', '/api/v1/roots');
      ctx.out(ctx.json ? JSON.stringify(items) : table(items.map((r) => ({ ...r, nfs: r.nfsPath })), ['name', 'arch', 'kernel', 'initrd', 'nfs']));
      return 0;
    }
    case 'rm': {
      if (rest.length !== 1) throw new UsageError('root rm NAME');
      const r = await ctx.api<Root>('DELETE', `/api/v1/roots/${encodeURIComponent(rest[0]!)}`);
      ctx.out(ctx.json ? JSON.stringify(r) : `removed root ${r.name}`);
      return 0;
    }
    default:
      throw new UsageError('root add|list|rm');
  }
}
