/**
 * The HTTP server's route table, on one screen. Boot routes are what nodes
 * fetch: unauthenticated and read-only. (The admin API comes under /api/v1.)
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../log.js';
import type { ServedFile } from '../boot/types.js';
import { registerFilesRoute } from './files-route.js';
import { registerIpxeRoute } from './ipxe-route.js';
import { registerBootedRoute, type BootedReport } from './booted-route.js';

/** What the boot routes need from the daemon: the boot decision and a place to record fetches. */
export interface BootContext {
  logger: Logger;
  serve(path: string): ServedFile;
  ipxeScript(mac: string): ServedFile;
  macOfPeer(ip: string): string | undefined;
  /** One log line, a boot event and a metric per fetch; `reason` says why a file was not served. */
  recordFetch(mac: string | undefined, file: string, bytes: number, status: number, reason?: string): void;
  /** Why a boot report from `peer` for this MAC and address is not believed, or undefined. */
  checkBooted(mac: string, ip: string, peer: string): string | undefined;
  /** Close the MAC's boot timeline (kernel, nfs, booted events). */
  recordBooted(mac: string, report: BootedReport): void;
  /** A running node's heartbeat: the tree it has mounted, and whether it can still read it. */
  recordAlive(mac: string, report: BootedReport): void;
  /** Threads sending file bodies with sendfile (files-route.ts); absent: the default. */
  sendfileThreads?: number;
  /**
   * Connections open at once (each holds descriptors: server/daemon/limits.ts counts them); beyond,
   * new ones are closed as they come, with a warning a minute at most. Absent: no cap.
   */
  maxConnections?: number;
}

const DROP_WARNING_EVERY_MS = 60_000;

export function buildHttpApp(ctx: BootContext): FastifyInstance {
  const app = Fastify({ logger: false });
  registerIpxeRoute(app, ctx);
  registerFilesRoute(app, ctx, ctx.sendfileThreads);
  registerBootedRoute(app, ctx);
  app.get('/healthz', async () => ({ ok: true }));
  if (ctx.maxConnections) {
    app.server.maxConnections = ctx.maxConnections;
    let dropped = 0;
    let warnedAt = 0;
    app.server.on('drop', () => {
      dropped++;
      const now = Date.now();
      if (now - warnedAt < DROP_WARNING_EVERY_MS) return;
      warnedAt = now;
      ctx.logger.warn({ maxConnections: ctx.maxConnections, droppedSoFar: dropped }, 'http connections over http.maxConnections: closing new ones');
    });
  }
  return app;
}
