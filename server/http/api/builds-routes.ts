/**
 * Root builds: POST /roots/:name/builds (202, queued), /builds, /builds/:id, its log, its
 * progress as server-sent events, cancel; /roots/:name/generations and /roots/:name/rollback.
 * The work is server/roots/jobs.ts; this file maps it to HTTP.
 */
import type { ApiContext } from './app.js';
import { actorOf } from './auth.js';
import { ApiError } from './errors.js';
import { NAME_PARAMS } from './schemas.js';
import type { Build } from '../../inventory/index.js';
import type { BuildEvent } from '../../roots/jobs.js';
import { createReadStream, existsSync } from 'node:fs';

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } };
const ROLLBACK_BODY = { type: 'object', additionalProperties: false, properties: { generation: { type: 'string', maxLength: 64 } } };
const LIST_QUERY = {
  type: 'object', additionalProperties: false,
  properties: { root: { type: 'string', maxLength: 63 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
};
/** While nothing happens, a comment line every so often keeps proxies from closing the stream. */
const HEARTBEAT_MS = 15_000;
/** The build may run in another process (a --offline CLI): its row is polled too. */
const POLL_MS = 1_000;

const ended = (b: Build) => b.state !== 'queued' && b.state !== 'running';

export function registerBuildRoutes({ routes, inv, jobs }: ApiContext): void {
  const get = (id: number) => {
    const b = inv.builds.get(id);
    if (!b) throw new ApiError(404, 'not_found', 'id', `no build ${id}`);
    return b;
  };

  routes.add({
    method: 'POST', url: '/api/v1/roots/:name/builds', tag: 'builds',
    summary: 'Build (or rebuild) a root from roots/<name>.yaml: 202 with the queued build; 409 while one runs; 507 when the disk lacks room',
    params: NAME_PARAMS,
    handler: async (req, reply) => {
      if (req.body !== undefined && req.body !== null && (typeof req.body !== 'object' || Object.keys(req.body).length > 0)) {
        throw new ApiError(400, 'invalid', 'body', 'a build takes no parameters: send no body or {}');
      }
      const b = await jobs.request((req.params as { name: string }).name, actorOf(req));
      return reply.code(202).header('location', `/api/v1/builds/${b.id}`).send(b);
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/builds', tag: 'builds', summary: 'Builds, newest first (?root=NAME)', querystring: LIST_QUERY,
    handler: async (req) => {
      const q = req.query as { root?: string; limit: number };
      return { items: inv.builds.list({ root: q.root, limit: q.limit }) };
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/builds/:id', tag: 'builds', summary: 'One build: state, step, progress, result or error', params: ID_PARAMS,
    handler: async (req) => get((req.params as { id: number }).id),
  });

  routes.add({
    method: 'GET', url: '/api/v1/builds/:id/log', tag: 'builds', summary: 'The build log (text/plain), every command line and its output', params: ID_PARAMS,
    handler: async (req, reply) => {
      const b = get((req.params as { id: number }).id);
      if (!existsSync(b.logFile)) throw new ApiError(404, 'not_found', 'log', `build ${b.id} has no log yet (${b.state})`);
      return reply.type('text/plain; charset=utf-8').send(createReadStream(b.logFile));
    },
  });

  routes.add({
    method: 'GET', url: '/api/v1/builds/:id/events', tag: 'builds', params: ID_PARAMS,
    summary: 'Progress as server-sent events: `build` (the record, first), `step`, `log` (each output line), `end` (the final record; then the stream closes)',
    handler: async (req, reply) => {
      const first = get((req.params as { id: number }).id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let lastStep = first.step;
      let done = false;
      const timers: NodeJS.Timeout[] = [];
      let off = () => {};
      const finish = (b: Build) => {
        if (done) return;
        done = true;
        off();
        for (const t of timers) clearInterval(t);
        send('end', b);
        res.end();
      };
      send('build', first);
      if (ended(first)) return finish(first);
      off = jobs.subscribe(first.id, (e: BuildEvent) => {
        if (done) return;
        if (e.type === 'end') return finish(e.build);
        if (e.type === 'step') lastStep = e.step;
        send(e.type, e.type === 'build' ? e.build : e);
      });
      timers.push(
        setInterval(() => res.write(': keepalive\n\n'), HEARTBEAT_MS),
        setInterval(() => {
          const b = inv.builds.get(first.id);
          if (!b || ended(b)) return finish(b ?? first);
          if (b.step !== lastStep && b.step) {
            lastStep = b.step;
            send('step', { type: 'step', id: b.id, step: b.step, title: b.stepTitle, progress: b.progress });
          }
        }, POLL_MS),
      );
      req.raw.on('close', () => {
        done = true;
        off();
        for (const t of timers) clearInterval(t);
      });
    },
  });

  routes.add({
    method: 'POST', url: '/api/v1/builds/:id/cancel', tag: 'builds', summary: 'Cancel a queued or running build (its generation is removed; the live one is untouched)',
    params: ID_PARAMS,
    handler: async (req) => jobs.cancel((req.params as { id: number }).id, actorOf(req)),
  });

  routes.add({
    method: 'GET', url: '/api/v1/roots/:name/generations', tag: 'builds', summary: 'The generations of a root, oldest first, and which is current', params: NAME_PARAMS,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      const gens = await jobs.generations(name);
      return {
        items: gens.map((g) => ({
          name: g.name, current: g.current, building: g.building, path: g.dir,
          kver: g.info?.kver ?? null, kernel: g.info?.files[0]?.name ?? null, initrd: g.info?.files[1]?.name ?? null,
          builtAt: g.info?.builtAt ?? null, build: g.info?.buildId ?? null,
        })),
      };
    },
  });

  routes.add({
    method: 'POST', url: '/api/v1/roots/:name/rollback', tag: 'builds',
    summary: 'Make the previous generation (or `generation`) live again: its kernel and initrd republished, `current` switched',
    params: NAME_PARAMS, body: ROLLBACK_BODY,
    handler: async (req) => {
      const name = (req.params as { name: string }).name;
      const to = (req.body as { generation?: string } | undefined)?.generation;
      const p = await jobs.rollback(name, to, actorOf(req));
      return { root: inv.roots.get(name), generation: p.generation };
    },
  });
}
