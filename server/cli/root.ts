/** `sidereal root add|list|rm` through the admin API; `root exec|shell` on the server's tree. */
import { parseArgs } from 'node:util';
import { destination } from 'pino';
import { type CliContext, UsageError, cliActor, table } from './context.js';
import { InventoryError } from '../inventory/index.js';
import { createLogger } from '../log.js';
import { rootExec, rootShell } from '../roots/chroot.js';
import { abortOnSignals, setDefaultRunLogger } from '../run.js';
import type { Root } from '../inventory/index.js';
import { rootBuildCommand } from './root-build.js';

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
    case 'exec':
    case 'shell':
      return maintain(ctx, sub, rest);
    case 'build': case 'builds': case 'cancel': case 'log': case 'generations': case 'rollback':
      return rootBuildCommand(ctx, sub, rest);
    default:
      throw new UsageError('root add|list|rm|exec|shell|build|builds|cancel|log|generations|rollback');
  }
}

/**
 * `root exec NAME -- CMD...` and `root shell NAME`: maintenance inside the
 * root's tree, as SIDUS's `sidus` alias did, but with proc, sys and devpts
 * bound only for the command, services blocked by policy-rc.d, and always
 * cleaned up (on failure and on Ctrl-C too). This runs on the server itself,
 * on the tree the nodes mount, so it reads the inventory file directly; the
 * command is audited.
 */
async function maintain(ctx: CliContext, sub: 'exec' | 'shell', rest: string[]): Promise<number> {
  const dash = rest.indexOf('--');
  const name = rest[0];
  const argv = dash >= 0 ? rest.slice(dash + 1) : [];
  if (!name || name === '--' || (sub === 'exec' && (dash !== 1 || argv.length === 0)) || (sub === 'shell' && rest.length !== 1)) {
    throw new UsageError(sub === 'exec' ? 'root exec NAME -- CMD [ARG...]' : 'root shell NAME');
  }
  const inv = ctx.inventory();
  const root = inv.roots.get(name);
  if (!root) throw new InventoryError('not_found', 'name', `no root named ${name}`);
  const logger = createLogger(ctx.config().log.level, destination(2));
  setDefaultRunLogger(logger);
  const abort = abortOnSignals();
  try {
    const arch = root.arch === 'i386' ? 'i386' : 'amd64';
    const code = sub === 'exec'
      ? await rootExec(root.nfsPath, argv, { arch, logger, signal: abort.signal, stdio: 'inherit' })
      : await rootShell(root.nfsPath, { arch, logger, signal: abort.signal });
    inv.audit.record(cliActor(), `root.${sub}`, name, null, { argv: sub === 'exec' ? argv : ['shell'], exitCode: code, tree: root.nfsPath });
    return code;
  } finally {
    abort.dispose();
  }
}
