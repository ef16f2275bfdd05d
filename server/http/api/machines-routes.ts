/** /api/v1/machines: register, list, show, update, delete, explain, events. */
import type { ApiContext } from './app.js';
import { stageSeconds } from '../../boot/timeline.js';
import { actorOf } from './auth.js';
import { ApiError } from './errors.js';
import { MAC_PARAMS, MACHINE, MACHINE_CREATE, MACHINE_UPDATE, PAGE_QUERY } from './schemas.js';
import { parseMac, type MachineInput } from '../../inventory/index.js';
import { planFor } from '../../boot/decide.js';
import { explain, EXPLAIN_ARCHES, type ExplainArch } from '../../boot/explain.js';

type Body = MachineInput & { mac: string };

export function registerMachineRoutes({ routes, inv, config }: ApiContext): void {
  const show = (mac: string) => {
    const machine = inv.machines.get(mac);
    if (!machine) throw new ApiError(404, 'not_found', 'mac', `${mac} is not registered`);
    const plan = planFor(inv, config, mac);
    const events = inv.events.list(mac, 200);
    return {
      machine,
      effective: { root: plan.root, bootMode: plan.bootMode, loader: plan.loader, kernelArgs: plan.kernelArgs },
      lease: inv.leases.byMac(mac) ?? null,
      /** The tree it was last sent to boot, or reported running (heartbeat), and when. */
      running: inv.nfs.boot(mac) ?? null,
      events: events.slice(-20),
      /** Seconds from the first event of the last boot to DHCP, files, kernel, nfs, booted. */
      stages: stageSeconds(events),
    };
  };

  routes.add({
    method: 'GET', url: '/api/v1/machines', tag: 'machines', summary: 'List machines (filter by group, root, status; paginated)',
    querystring: {
      type: 'object', additionalProperties: false,
      properties: { group: { type: 'string' }, root: { type: 'string' }, status: { type: 'string', enum: ['online', 'offline'] }, ...PAGE_QUERY },
    },
    response: { 200: { type: 'object', properties: { items: { type: 'array', items: MACHINE }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } } },
    handler: async (req) => {
      const q = req.query as { group?: string; root?: string; status?: 'online' | 'offline'; limit: number; offset: number };
      return { ...inv.machines.page(q), limit: q.limit, offset: q.offset };
    },
  });

  routes.add({
    method: 'POST', url: '/api/v1/machines', tag: 'machines', summary: 'Register a machine by MAC',
    body: MACHINE_CREATE, response: { 201: MACHINE },
    handler: async (req, reply) => {
      const { mac: raw, ...fields } = req.body as Body;
      const mac = parseMac(raw);
      const m = inv.audited(actorOf(req), 'machine.add', mac, () => {
        const after = inv.machines.add(mac, fields);
        return { before: null, after, result: after };
      });
      return reply.code(201).header('location', `/api/v1/machines/${m.mac}`).send(m);
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/machines/:mac', tag: 'machines', summary: 'Show a machine: lease, last boot events, effective settings and where each came from',
    params: MAC_PARAMS,
    handler: async (req) => show(parseMac((req.params as { mac: string }).mac)),
  });

  routes.add({
    method: 'PATCH', url: '/api/v1/machines/:mac', tag: 'machines', summary: 'Change fields of a machine (null clears one)',
    params: MAC_PARAMS, body: MACHINE_UPDATE, response: { 200: MACHINE },
    handler: async (req) => {
      const mac = parseMac((req.params as { mac: string }).mac);
      return inv.audited(actorOf(req), 'machine.update', mac, () => {
        const before = inv.machines.get(mac);
        const after = inv.machines.update(mac, req.body as MachineInput);
        return { before, after, result: after };
      });
    },
  });

  routes.add({
    method: 'DELETE', url: '/api/v1/machines/:mac', tag: 'machines', summary: 'Delete a machine',
    params: MAC_PARAMS, response: { 200: MACHINE },
    handler: async (req) => {
      const mac = parseMac((req.params as { mac: string }).mac);
      return inv.audited(actorOf(req), 'machine.delete', mac, () => {
        const before = inv.machines.remove(mac);
        return { before, after: null, result: before };
      });
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/machines/:mac/explain', tag: 'machines',
    summary: 'What DHCP answers this machine for an architecture, and the menu or iPXE script it gets next (the serving code path)',
    params: MAC_PARAMS,
    querystring: { type: 'object', additionalProperties: false, properties: { arch: { type: 'string', enum: EXPLAIN_ARCHES, default: 'bios' } } },
    handler: async (req) => explain(inv, config, parseMac((req.params as { mac: string }).mac), (req.query as { arch: ExplainArch }).arch),
  });

  routes.add({
    method: 'GET', url: '/api/v1/machines/:mac/events', tag: 'machines', summary: 'Boot timeline: DHCP, TFTP, HTTP, kernel, NFS root and booted events with times, and the seconds to each stage of the last boot',
    params: MAC_PARAMS,
    querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } } },
    handler: async (req) => {
      const mac = parseMac((req.params as { mac: string }).mac);
      const events = inv.events.list(mac, (req.query as { limit: number }).limit);
      return { mac, events, stages: stageSeconds(events) };
    },
  });
}
