/**
 * Bearer tokens on the admin API: reads need any live token, writes need
 * `admin`. The OpenAPI document and the docs page are public: they hold no
 * data. Tokens are made with `sidereal token create`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Inventory, TokenInfo } from '../../inventory/index.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    token?: TokenInfo;
    /** Set for the CLI's in-process API (--offline): the local user, trusted as admin. */
    localActor?: string;
  }
}

const PUBLIC = new Set(['/api/v1/openapi.json', '/api/v1/docs']);
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function registerAuth(app: FastifyInstance, inv: Inventory, localActor?: string): void {
  app.addHook('onRequest', async (req: FastifyRequest) => {
    // In-process only (never on a socket): whoever can open the inventory file is already its admin.
    if (localActor) {
      req.localActor = localActor;
      return;
    }
    const path = req.url.split('?')[0]!;
    if (PUBLIC.has(path) || !path.startsWith('/api/')) return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new ApiError(401, 'unauthorized', 'authorization', 'send Authorization: Bearer <token> (make one with `sidereal token create`)');
    const token = inv.tokens.verify(m[1]!);
    if (!token) throw new ApiError(401, 'unauthorized', 'authorization', 'the token is unknown or revoked');
    if (WRITES.has(req.method) && token.role !== 'admin') {
      throw new ApiError(403, 'forbidden', 'authorization', `token ${token.name} has role read; this write needs admin`);
    }
    req.token = token;
  });
}

/** Who did it, for the audit log. */
export function actorOf(req: FastifyRequest): string {
  return req.localActor ?? (req.token ? `token:${req.token.name}` : 'anonymous');
}
