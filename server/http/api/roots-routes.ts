/** /api/v1/roots: the roots machines boot (the root builder of issue 4 will fill these from builds). */
import type { ApiContext } from './app.js';
import { actorOf } from './auth.js';
import { ApiError } from './errors.js';
import { NAME_PARAMS, ROOT_PUT } from './schemas.js';
import type { RootInput } from '../../inventory/index.js';

export function registerRootRoutes({ routes, inv }: ApiContext): void {
  routes.add({
    method: 'GET', url: '/api/v1/roots', tag: 'roots', summary: 'List roots',
    handler: async () => ({ items: inv.roots.list() }),
  });

  routes.add({
    method: 'GET', url: '/api/v1/roots/:name', tag: 'roots', summary: 'Show a root', params: NAME_PARAMS,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      const r = inv.roots.get(name);
      if (!r) throw new ApiError(404, 'not_found', 'name', `no root named ${name}`);
      return r;
    },
  });

  routes.add({
    method: 'PUT', url: '/api/v1/roots/:name', tag: 'roots', summary: 'Create or replace a root (kernel and initrd published in the TFTP root)',
    params: NAME_PARAMS, body: ROOT_PUT,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      return inv.audited(actorOf(req), 'root.put', name, () => {
        const before = inv.roots.get(name) ?? null;
        const after = inv.roots.put({ ...(req.body as Omit<RootInput, 'name'>), name });
        return { before, after, result: after };
      });
    },
  });

  routes.add({
    method: 'DELETE', url: '/api/v1/roots/:name', tag: 'roots', summary: 'Delete a root no machine or group uses', params: NAME_PARAMS,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      return inv.audited(actorOf(req), 'root.delete', name, () => {
        const before = inv.roots.remove(name);
        return { before, after: null, result: before };
      });
    },
  });
}
