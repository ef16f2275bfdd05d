/** /api/v1/status: what this server is and serves, at a glance (`sidereal status`). */
import type { ApiContext } from './app.js';
import { API_VERSION } from './app.js';

export function registerStatusRoute({ routes, inv, config, runtime }: ApiContext): void {
  routes.add({
    method: 'GET', url: '/api/v1/status', tag: 'status', summary: 'Version, uptime, services and inventory counts',
    handler: async () => {
      const count = (sql: string) => (inv.db.prepare(sql).get() as { n: number }).n;
      return {
        apiVersion: API_VERSION,
        serverAddress: config.serverAddress,
        interface: config.interface ?? null,
        daemon: runtime ? { running: true, startedAt: runtime.startedAt, uptimeSeconds: Math.round((Date.now() - runtime.startedAt) / 1000), services: live(runtime.services) } : { running: false },
        inventory: {
          machines: count('SELECT count(*) AS n FROM machines'),
          groups: count('SELECT count(*) AS n FROM groups'),
          roots: count('SELECT count(*) AS n FROM roots'),
          leasesActive: inv.leases.activeCount(),
          discovered: inv.discovered.list().length,
        },
      };
    },
  });
}

/** A service given as a function reports its state now (the NFS exports). */
function live(services: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(services).map(([k, v]) => [k, typeof v === 'function' ? (v as () => unknown)() : v]));
}
