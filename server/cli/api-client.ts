/**
 * How the CLI reaches the inventory: always through the admin API, so the
 * CLI and scripts see the same validation, errors and audit. Over HTTP to a
 * running `sidereal serve` (URL and token from flags, the environment or the
 * config), or, with --offline, through the same API built in this process on
 * the inventory file (for a server whose daemon is stopped; as root).
 */
import type { FastifyInstance } from 'fastify';
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import { buildApiApp } from '../http/api/app.js';
import { silentLogger } from '../log.js';

export interface ApiErrorBody { error: string; field: string | null; message: string }

/** The API said no: the status and its `{ error, field, message }`. */
export class ApiCallError extends Error {
  constructor(readonly status: number, readonly body: ApiErrorBody) {
    super(body.field ? `${body.field}: ${body.message}` : body.message);
    this.name = 'ApiCallError';
  }
}

/** The API could not be reached at all. */
export class ApiUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiUnreachableError';
  }
}

export interface ApiTransport {
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

function parse(status: number, text: string): unknown {
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiCallError(status, { error: 'bad_response', field: null, message: `the server answered ${status} with non-JSON: ${text.slice(0, 200)}` });
  }
  if (status >= 400) {
    const b = body as Partial<ApiErrorBody> | null;
    throw new ApiCallError(status, { error: b?.error ?? 'error', field: b?.field ?? null, message: b?.message ?? `HTTP ${status}` });
  }
  return body;
}

export function httpTransport(url: string, token: string): ApiTransport {
  const base = url.replace(/\/+$/, '');
  return {
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(base + path, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
        throw new ApiUnreachableError(`cannot reach the API at ${base} (${cause}): is \`sidereal serve\` running? On the server, --offline works on the inventory file directly`);
      }
      return parse(res.status, await res.text()) as T;
    },
    close: async () => {},
  };
}

/** The same API, in this process, on the inventory file; writes are audited as `cli:<user>`. */
export function localTransport(inv: Inventory, config: SiderealConfig, actor: string): ApiTransport {
  let app: FastifyInstance | undefined;
  return {
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      app ??= buildApiApp(inv, config, silentLogger(), { localActor: actor });
      const r = await app.inject({
        method: method as 'GET', url: path,
        ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      return parse(r.statusCode, r.body) as T;
    },
    close: async () => { await app?.close(); },
  };
}
