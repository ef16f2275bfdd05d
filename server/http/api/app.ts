/**
 * The admin API under /api/v1: its own fastify instance on its own listener
 * (loopback by default), apart from the boot routes nodes use. Route table:
 *   machines-routes.ts   /machines, /machines/:mac, /machines/:mac/explain, /machines/:mac/events
 *   groups-routes.ts     /groups, /groups/:name
 *   roots-routes.ts      /roots, /roots/:name
 *   builds-routes.ts     /roots/:name/builds, /builds, /builds/:id/{log,events,cancel}, /roots/:name/{generations,rollback}
 *   discovery-routes.ts  /discovered, /discovered/:mac/adopt
 *   audit-routes.ts      /audit
 *   import-routes.ts     /import
 *   status-route.ts      /status
 *   here                 /openapi.json, /docs
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Ajv } from 'ajv';
import type { SiderealConfig } from '../../config/config.js';
import type { Inventory } from '../../inventory/index.js';
import type { Logger } from '../../log.js';
import { registerAuth } from './auth.js';
import { sendError, toErrorReply } from './errors.js';
import { ApiRoutes } from './openapi.js';
import { registerMachineRoutes } from './machines-routes.js';
import { registerGroupRoutes } from './groups-routes.js';
import { registerRootRoutes } from './roots-routes.js';
import { registerBuildRoutes } from './builds-routes.js';
import { BuildJobs } from '../../roots/jobs.js';
import { registerDiscoveryRoutes } from './discovery-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerImportRoutes } from './import-routes.js';
import { registerStatusRoute } from './status-route.js';
import { docsPage } from './docs-page.js';

export interface ApiContext {
  routes: ApiRoutes;
  inv: Inventory;
  config: SiderealConfig;
  logger: Logger;
  jobs: BuildJobs;
  runtime?: ApiOptions['runtime'];
}

export const API_VERSION = '1.0.0';

/**
 * Bodies are checked as sent: no type coercion ("5" is not 5) and unknown
 * fields refused, not silently dropped (fastify's defaults do both).
 * Query strings and path parameters are text, so they are coerced.
 */
function validators() {
  const body = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false });
  const query = new Ajv({ allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => (httpPart === 'body' ? body : query).compile(schema);
}

export interface ApiOptions {
  /** In-process use by the CLI (--offline): no token, writes audited as this actor. */
  localActor?: string;
  /** What the running daemon serves, for /status; absent when the API runs inside the CLI. */
  runtime?: { startedAt: number; services: Record<string, unknown> };
  /** The build queue (the daemon's; the CLI's own with --offline). One is made when absent. */
  jobs?: BuildJobs;
  /** Called after every successful write (the daemon reconciles the NFS exports). */
  onWrite?: (what: string) => void;
  /** Serve over TLS with this certificate and key (PEM). */
  https?: { cert: Buffer; key: Buffer };
}

export function buildApiApp(inv: Inventory, config: SiderealConfig, logger: Logger, opts: ApiOptions = {}): FastifyInstance {
  // The https server is a tls.Server under the same request API: one type for both.
  const app = (opts.https
    ? Fastify({ logger: false, bodyLimit: 1024 * 1024, https: opts.https })
    : Fastify({ logger: false, bodyLimit: 1024 * 1024 })) as unknown as FastifyInstance;
  app.setValidatorCompiler(validators());
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toErrorReply(err, logger, req);
    return sendError(reply, status, body);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, { error: 'not_found', field: null, message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  registerAuth(app, inv, opts.localActor);
  if (opts.onWrite) {
    const onWrite = opts.onWrite;
    app.addHook('onResponse', async (req, reply) => {
      if (req.method !== 'GET' && reply.statusCode < 400) onWrite(`${req.method} ${req.routeOptions.url ?? req.url}`);
    });
  }

  const routes = new ApiRoutes(app);
  const jobs = opts.jobs ?? new BuildJobs(inv, config, logger);
  // Its own queue (the CLI's --offline): a build still running when the app closes is cancelled and cleaned.
  if (!opts.jobs) app.addHook('onClose', async () => jobs.close());
  const ctx: ApiContext = { routes, inv, config, logger, jobs, runtime: opts.runtime };
  registerMachineRoutes(ctx);
  registerGroupRoutes(ctx);
  registerRootRoutes(ctx);
  registerBuildRoutes(ctx);
  registerDiscoveryRoutes(ctx);
  registerAuditRoutes(ctx);
  registerImportRoutes(ctx);
  registerStatusRoute(ctx);

  const doc = () => routes.document(API_VERSION);
  app.get('/api/v1/openapi.json', async () => doc());
  app.get('/api/v1/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(doc())));
  return app;
}
