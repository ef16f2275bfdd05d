/** `sidereal status`: is the daemon up, what does it serve, how big is the inventory. */
import { type CliContext } from './context.js';

interface Status {
  apiVersion: string;
  serverAddress: string;
  interface: string | null;
  daemon: { running: boolean; uptimeSeconds?: number; services?: Record<string, unknown> };
  inventory: Record<string, number>;
}

interface RogueStatus {
  lastCheck: number | null;
  active: Array<{ serverId: string; source: string; lastSeen: number; replies: number; lastReply: { type: string; yiaddr: string; bootFile: string | null } }>;
  seen: Array<{ serverId: string; lastSeen: number }>;
}

/** Loud when another DHCP server answers: a site with two loses nodes at random. */
function rogueLines(r: RogueStatus, now = Date.now()): string[] {
  const ago = (t: number) => `${Math.max(0, Math.round((now - t) / 1000))} s ago`;
  const checked = r.lastCheck === null ? 'no probe sent (it needs `interface`, and dhcp.rogueCheckInterval above 0)' : `last probe ${ago(r.lastCheck)}`;
  if (r.active.length === 0) {
    const past = r.seen.length ? `; earlier: ${r.seen.map((s) => `${s.serverId} (last seen ${ago(s.lastSeen)})`).join(', ')}` : '';
    return [`  rogue   no other DHCP server answers (${checked})${past}`];
  }
  return [
    `  rogue   WARNING: ${r.active.length} other DHCP server${r.active.length > 1 ? 's answer' : ' answers'} on the provisioning segment: nodes will boot from ${r.active.length > 1 ? 'them' : 'it'} at random (${checked})`,
    ...r.active.map((s) => `          ${s.serverId}${s.source !== s.serverId ? ` via ${s.source}` : ''}: ${s.lastReply.type} ${s.lastReply.yiaddr}` +
      `${s.lastReply.bootFile ? `, boot file ${s.lastReply.bootFile}` : ''}; ${s.replies} replies, last ${ago(s.lastSeen)}`),
  ];
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
    if (name === 'rogueDhcp' && v) {
      for (const line of rogueLines(v as RogueStatus)) ctx.out(line);
      continue;
    }
    ctx.out(`  ${name.padEnd(6)}  ${v === null ? 'disabled' : JSON.stringify(v)}`);
  }
  ctx.out(`inventory ${Object.entries(s.inventory).map(([k, v]) => `${v} ${k}`).join(', ')}`);
  return 0;
}
