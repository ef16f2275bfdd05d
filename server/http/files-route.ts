/**
 * `GET /files/<path>`: kernels, initrds and bootloaders over HTTP, for
 * lpxelinux, iPXE and UEFI HTTP boot. The same path rules as TFTP (one
 * resolver), Content-Length always, and single-range requests (RFC 9110
 * 14.2) so a client can resume a 60 MB initrd.
 */
import { createReadStream, statSync } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BootContext } from './app.js';

export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    // suffix range: the last N bytes
    const n = Number(m[2]);
    if (n === 0) return 'invalid';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}

export function registerFilesRoute(app: FastifyInstance, ctx: BootContext): void {
  app.get<{ Params: { '*': string } }>('/files/*', async (req, reply) => {
    const requested = req.params['*'];
    const served = ctx.serve(requested);
    const mac = ctx.macOfPeer(req.ip);
    if (served.kind === 'missing') {
      ctx.recordFetch(mac, requested, 0, 404, served.reason);
      return reply.code(404).type('text/plain').send('not found\n');
    }
    if (served.kind === 'virtual') {
      ctx.recordFetch(mac, requested, served.content.length, 200);
      return reply.type('text/plain').header('content-length', served.content.length).send(served.content);
    }
    return sendFile(reply, served.path, req.headers.range, (status, bytes) => ctx.recordFetch(mac, requested, bytes, status));
  });
}

function sendFile(reply: FastifyReply, path: string, rangeHeader: string | undefined, done: (status: number, bytes: number) => void) {
  const size = statSync(path).size;
  const range = parseRange(rangeHeader, size);
  reply.header('accept-ranges', 'bytes').type('application/octet-stream');
  if (range === 'invalid') {
    return reply.code(416).header('content-range', `bytes */${size}`).send();
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', length);
  done(range ? 206 : 200, length);
  if (length === 0) return reply.send('');
  return reply.send(createReadStream(path, { start, end, highWaterMark: 256 * 1024 }));
}
