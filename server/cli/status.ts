/** `sidereal status`: is the daemon up, what does it serve, how big is the inventory. */
import { type CliContext } from './context.js';

interface Status {
  apiVersion: string;
  serverAddress: string;
  interface: string | null;
  daemon: { running: boolean; uptimeSeconds?: number; services?: Record<string, unknown> };
  inventory: Record<string, number>;
}

export async function statusCommand(ctx: CliContext): Promise<number> {
  const s = await ctx.api<Status>('GET', '/api/v1/status');
  if (ctx.json) {
    ctx.out(JSON.stringify(s));
    return 0;
  }
  ctx.out(`server    ${s.serverAddress}${s.interface ? ` on ${s.interface}` : ''}`);
  ctx.out(`daemon    ${s.daemon.running ? `running for ${s.daemon.uptimeSeconds} s` : 'not reached (--offline)'}`);
  for (const [name, v] of Object.entries(s.daemon.services ?? {})) {
    if (name === 'nfs' && v) {
      const n = v as { backend: string; ok: boolean; error: string | null; exports: Array<{ path: string; clients: Array<{ match: string; access: string }> }>; problems: Array<{ message: string }> };
      ctx.out(`  nfs     ${n.backend === 'none' ? 'not managed (nfs.backend: none)' : `${n.backend}: ${n.ok ? 'applied' : `FAILING: ${n.error}`}`}`);
      for (const e of n.exports) ctx.out(`          ${e.path}  ${e.clients.map((c) => `${c.match}(${c.access})`).join(' ')}`);
      for (const p of n.problems) ctx.out(`          problem: ${p.message}`);
      continue;
    }
    ctx.out(`  ${name.padEnd(6)}  ${v === null ? 'disabled' : JSON.stringify(v)}`);
  }
  ctx.out(`inventory ${Object.entries(s.inventory).map(([k, v]) => `${v} ${k}`).join(', ')}`);
  return 0;
}
