/** /api/v1/audit: every write, newest first. */
import type { ApiContext } from './app.js';

export function registerAuditRoutes({ routes, inv }: ApiContext): void {
  routes.add({
    method: 'GET', url: '/api/v1/audit', tag: 'audit', summary: 'The audit log, newest first (page with ?before=<id>)',
    querystring: {
      type: 'object', additionalProperties: false,
      properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, before: { type: 'integer', minimum: 1 }, target: { type: 'string' } },
    },
    handler: async (req) => {
      const q = req.query as { limit: number; before?: number; target?: string };
      return { items: inv.audit.list({ limit: q.limit, beforeId: q.before, target: q.target }) };
    },
  });
}
