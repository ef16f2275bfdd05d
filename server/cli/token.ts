/**
 * `sidereal token create|list|revoke`: API tokens. These act on the
 * inventory file directly (root on the server), since the API itself needs
 * a token: this is how the first one is made.
 */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, cliActor as actor, table } from './context.js';
import type { Role } from '../inventory/index.js';

export async function tokenCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const inv = ctx.inventory();
  switch (sub) {
    case 'create': {
      const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, role: { type: 'string', default: 'read' } } });
      if (!values.name) throw new UsageError('token create --name NAME [--role admin|read]');
      const { token, info } = inv.audited(actor(), 'token.create', values.name, () => {
        const made = inv.tokens.create(values.name!, values.role as Role);
        return { before: null, after: made.info, result: made };
      });
      if (ctx.json) ctx.out(JSON.stringify({ token, ...info }));
      else {
        ctx.out(token);
        process.stderr.write(`token ${info.name} (${info.role}) created: it is shown only now, keep it safe\n`);
      }
      return 0;
    }
    case 'list': {
      const list = inv.tokens.list();
      const when = (t: number | null) => (t ? new Date(t).toISOString() : '-');
      ctx.out(ctx.json ? JSON.stringify(list) : table(list.map((t) => ({ ...t, created: when(t.createdAt), used: when(t.lastUsedAt), revoked: when(t.revokedAt) })), ['name', 'role', 'created', 'used', 'revoked']));
      return 0;
    }
    case 'revoke': {
      if (rest.length !== 1) throw new UsageError('token revoke NAME');
      const t = inv.audited(actor(), 'token.revoke', rest[0]!, () => {
        const after = inv.tokens.revoke(rest[0]!);
        return { before: null, after, result: after };
      });
      ctx.out(ctx.json ? JSON.stringify(t) : `revoked token ${t.name}`);
      return 0;
    }
    default:
      throw new UsageError('token create|list|revoke');
  }
}
