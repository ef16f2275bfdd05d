/** /api/v1/discovered: unknown MACs that asked for DHCP, and adopting one into a machine. */
import type { ApiContext } from './app.js';
import { actorOf } from './auth.js';
import { ApiError } from './errors.js';
import { MAC_PARAMS, MACHINE, MACHINE_UPDATE } from './schemas.js';
import { parseMac, type MachineInput } from '../../inventory/index.js';

export function registerDiscoveryRoutes({ routes, inv }: ApiContext): void {
  routes.add({
    method: 'GET', url: '/api/v1/discovered', tag: 'discovery', summary: 'Unregistered MACs seen on DHCP: first and last seen, arch, vendor and user class',
    handler: async () => ({ items: inv.discovered.list() }),
  });

  routes.add({
    method: 'POST', url: '/api/v1/discovered/:mac/adopt', tag: 'discovery', summary: 'Register a discovered MAC as a machine, in one call',
    params: MAC_PARAMS, body: { ...MACHINE_UPDATE, minProperties: 0 }, response: { 201: MACHINE },
    handler: async (req, reply) => {
      const mac = parseMac((req.params as { mac: string }).mac);
      const m = inv.audited(actorOf(req), 'machine.adopt', mac, () => {
        const seen = inv.discovered.get(mac);
        if (!seen) throw new ApiError(404, 'not_found', 'mac', `${mac} was never seen on DHCP`);
        const body = (req.body ?? {}) as MachineInput;
        // The name the client announced (option 12) is a sensible default.
        const hostname = body.hostname === undefined ? seen.hostname : body.hostname;
        const after = inv.machines.add(mac, { ...body, hostname });
        inv.discovered.remove(mac);
        return { before: seen, after, result: after };
      });
      return reply.code(201).header('location', `/api/v1/machines/${m.mac}`).send(m);
    },
  });
}
