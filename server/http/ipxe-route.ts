/** `GET /boot/<mac>.ipxe`: the per-machine iPXE script, rendered from the inventory at each request. */
import type { FastifyInstance } from 'fastify';
import type { BootContext } from './app.js';
import { normalizeMac } from '../inventory/mac.js';

export function registerIpxeRoute(app: FastifyInstance, ctx: BootContext): void {
  app.get<{ Params: { file: string } }>('/boot/:file', async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    let mac: string | undefined;
    try {
      mac = m ? normalizeMac(m[1]!) : undefined;
    } catch {
      mac = undefined;
    }
    if (!mac) {
      return reply.code(404).type('application/json').send({ error: 'not_found', field: 'mac', message: `${req.params.file} is not <mac>.ipxe` });
    }
    const served = ctx.ipxeScript(mac);
    if (served.kind !== 'virtual') return reply.code(404).send();
    ctx.recordFetch(mac, `boot/${mac}.ipxe`, served.content.length, 200);
    return reply.type('text/plain').header('content-length', served.content.length).send(served.content);
  });
}
