/** /api/v1/groups: defaults their machines inherit (machine > group > config defaults). */
import type { ApiContext } from './app.js';
import { actorOf } from './auth.js';
import { ApiError } from './errors.js';
import { GROUP_CREATE, GROUP_UPDATE, NAME_PARAMS } from './schemas.js';
import type { GroupInput } from '../../inventory/index.js';

export function registerGroupRoutes({ routes, inv }: ApiContext): void {
  const get = (name: string) => {
    const g = inv.groups.get(name);
    if (!g) throw new ApiError(404, 'not_found', 'name', `no group named ${name}`);
    return g;
  };

  routes.add({
    method: 'GET', url: '/api/v1/groups', tag: 'groups', summary: 'List groups',
    handler: async () => ({ items: inv.groups.list() }),
  });

  routes.add({
    method: 'POST', url: '/api/v1/groups', tag: 'groups', summary: 'Create a group', body: GROUP_CREATE,
    handler: async (req, reply) => {
      const body = req.body as GroupInput;
      const g = inv.audited(actorOf(req), 'group.add', body.name, () => {
        if (inv.groups.get(body.name)) throw new ApiError(409, 'conflict', 'name', `group ${body.name} exists`);
        const after = inv.groups.put(body);
        return { before: null, after, result: after };
      });
      return reply.code(201).header('location', `/api/v1/groups/${g.name}`).send(g);
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/groups/:name', tag: 'groups', summary: 'Show a group and its machines', params: NAME_PARAMS,
    handler: async (req) => {
      const g = get((req.params as { name: string }).name);
      return { group: g, machines: inv.machines.list({ group: g.name }).map((m) => m.mac) };
    },
  });

  routes.add({
    method: 'PATCH', url: '/api/v1/groups/:name', tag: 'groups', summary: 'Change fields of a group (null clears one)',
    params: NAME_PARAMS, body: GROUP_UPDATE,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      return inv.audited(actorOf(req), 'group.update', name, () => {
        const before = get(name);
        const after = inv.groups.put({ ...before, ...(req.body as Partial<GroupInput>), name });
        return { before, after, result: after };
      });
    },
  });

  routes.add({
    method: 'DELETE', url: '/api/v1/groups/:name', tag: 'groups', summary: 'Delete a group with no machines', params: NAME_PARAMS,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      return inv.audited(actorOf(req), 'group.delete', name, () => {
        const before = inv.groups.remove(name);
        return { before, after: null, result: before };
      });
    },
  });
}
