/** `GET /metrics`: the Prometheus text exposition (format 0.0.4) of Sidereal's metrics, rendered per scrape. */
import type { FastifyInstance } from 'fastify';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics/registry.js';

export function registerMetricsRoute(app: FastifyInstance, metrics: { registry: { render(): string } }): void {
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', PROMETHEUS_CONTENT_TYPE).header('cache-control', 'no-store').send(metrics.registry.render());
  });
}
