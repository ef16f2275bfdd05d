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
  /** GET a text/event-stream and hand each event over as it arrives; resolves when the server ends it. */
  events(path: string, onEvent: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<void>;
  /** GET a text/plain resource (a build log). */
  text(path: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Server-sent events from a byte stream: `event:` and `data:` lines, a blank line ends one;
 * comment lines (`: keepalive`) are skipped. Data is JSON here (every Sidereal stream sends JSON).
 */
export async function readEventStream(chunks: AsyncIterable<Uint8Array | string>, onEvent: (event: string, data: unknown) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  for await (const chunk of chunks) {
    buf += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) {
          const text = data.join('\n');
          let parsed: unknown = text;
          try { parsed = JSON.parse(text); } catch { /* plain text data */ }
          onEvent(event, parsed);
        }
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else if (line.startsWith('event:')) {
        event = line.slice(6).trim();
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
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
  /** fetch with the token; a network failure becomes ApiUnreachableError (one message for every call). */
  const reach = async (path: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Response> => {
    try {
      return await fetch(base + path, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
    } catch (e) {
      if (init.signal?.aborted && !(init.signal.reason instanceof DOMException && init.signal.reason.name === 'TimeoutError')) throw e;
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new ApiUnreachableError(`cannot reach the API at ${base} (${cause}): is \`sidereal serve\` running? On the server, --offline works on the inventory file directly`);
    }
  };
  return {
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await reach(path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
      return parse(res.status, await res.text()) as T;
    },
    async text(path) {
      const res = await reach(path, { signal: AbortSignal.timeout(60_000) });
      const text = await res.text();
      if (res.status >= 400) parse(res.status, text);
      return text;
    },
    async events(path, onEvent, signal) {
      let res: Response;
      try {
        // No timeout: a build's stream lasts as long as the build (the server sends keepalives).
        res = await reach(path, { headers: { accept: 'text/event-stream' }, signal });
      } catch (e) {
        if (signal?.aborted) return; // the user stopped following
        throw e;
      }
      if (res.status >= 400 || !res.body) parse(res.status, await res.text());
      try {
        await readEventStream(res.body as unknown as AsyncIterable<Uint8Array>, onEvent);
      } catch (e) {
        if (!signal?.aborted) throw new ApiUnreachableError(`the event stream from ${base} broke: ${(e as Error).message}`);
      }
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
    async text(path) {
      app ??= buildApiApp(inv, config, silentLogger(), { localActor: actor });
      const r = await app.inject({ method: 'GET', url: path });
      if (r.statusCode >= 400) parse(r.statusCode, r.body);
      return r.body;
    },
    async events(path, onEvent, signal) {
      app ??= buildApiApp(inv, config, silentLogger(), { localActor: actor });
      const r = await app.inject({ method: 'GET', url: path, payloadAsStream: true, ...(signal ? { signal } : {}) });
      if (r.statusCode >= 400) {
        let text = '';
        for await (const c of r.stream()) text += String(c);
        parse(r.statusCode, text);
      }
      try {
        await readEventStream(r.stream() as AsyncIterable<Uint8Array>, onEvent);
      } catch (e) {
        if (!signal?.aborted) throw e;
      }
    },
    close: async () => { await app?.close(); },
  };
}
