/**
 * `POST /boot/booted`: a node says it is up (the root's sidereal-booted unit, at multi-user).
 * It is unauthenticated, like every boot route, so it is believed only as far as the network
 * vouches for it: the sender's address must be the one the node names, and Sidereal's lease
 * for that MAC must hold that address. It then closes the boot timeline:
 *   kernel  when the kernel started (now - uptime),
 *   nfs     when the initramfs had the NFS root mounted (uptime then, from the dracut hook),
 *   booted  now.
 * `POST /boot/alive`, the same unit's timer every 30 s, with the same checks: the tree the node
 * has mounted (so its generation stays exported) and whether reading the root still works.
 */
import type { FastifyInstance } from 'fastify';
import type { BootContext } from './app.js';
import { normalizeMac } from '../inventory/mac.js';

const BODY = {
  type: 'object', additionalProperties: false, required: ['mac', 'ip', 'uptime'],
  properties: {
    mac: { type: 'string', maxLength: 32 },
    ip: { type: 'string', maxLength: 15 },
    uptime: { type: 'number', minimum: 0, maximum: 1e8 },
    nfsMountedAt: { type: 'number', minimum: 0, maximum: 1e8 },
    hostname: { type: 'string', maxLength: 253 },
    kernel: { type: 'string', maxLength: 128 },
    root: { type: 'string', maxLength: 1024 },
    nfs: { type: 'string', enum: ['ok', 'error'] },
    rootfs: { type: 'string', maxLength: 32 },
  },
};

export interface BootedReport {
  mac: string;
  ip: string;
  uptime: number;
  nfsMountedAt?: number;
  hostname?: string;
  kernel?: string;
  root?: string;
  /** What / is on the node: overlayfs (a shared node's RAM overlay) or nfs (the maintenance node). */
  rootfs?: string;
  /** Heartbeats: `ok` when the node could read its root just now. */
  nfs?: 'ok' | 'error';
}

export function registerBootedRoute(app: FastifyInstance, ctx: BootContext): void {
  for (const kind of ['booted', 'alive'] as const) registerReport(app, ctx, kind);
}

function registerReport(app: FastifyInstance, ctx: BootContext, kind: 'booted' | 'alive'): void {
  app.post<{ Body: BootedReport }>(`/boot/${kind}`, { schema: { body: BODY } }, async (req, reply) => {
    const b = req.body;
    let mac: string;
    try {
      mac = normalizeMac(b.mac);
    } catch {
      return reply.code(400).send({ error: 'invalid', field: 'mac', message: `${JSON.stringify(b.mac)} is not a MAC address` });
    }
    const peer = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    const problem = ctx.checkBooted(mac, b.ip, peer);
    if (problem) {
      ctx.logger.warn({ mac, ip: b.ip, peer, reason: problem }, 'boot report refused');
      return reply.code(403).send({ error: 'forbidden', field: 'ip', message: problem });
    }
    if (kind === 'booted') ctx.recordBooted(mac, b);
    else ctx.recordAlive(mac, b);
    return reply.code(204).send();
  });
}
