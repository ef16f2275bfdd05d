/**
 * `GET /files/<path>`: kernels, initrds and bootloaders over HTTP, for
 * lpxelinux, iPXE and UEFI HTTP boot. The same path rules as TFTP (one
 * resolver), Content-Length always, and single-range requests (RFC 9110
 * 14.2) so a client can resume a 60 MB initrd.
 *
 * How bytes go out: Node writes the status and headers, then the body goes
 * from the page cache to the socket with sendfile(2) on the native pump's
 * threads (sendfile.ts), as nginx does; the event loop only sees each
 * response's start and end. The file is opened O_NOFOLLOW and fstat'd at each
 * request, so a kernel replaced in place or renamed over is served new at the
 * very next request. Without a socket descriptor (app.inject) the file is
 * streamed in 1 MiB reads.
 *
 * (Until 2026-12 a file was read once into memory and sent from there: 0.71-0.75x
 * nginx's throughput to 100 clients at 1.7x its CPU, bench/http.ts. sendfile on
 * two threads: 0.91x, and no file in the daemon's memory.)
 */
import { constants, createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BootContext } from './app.js';
import { sendfileResponse, sendfileTurn, SendfilePump, type SendEnd } from './sendfile.js';

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

/** Read size when streaming (no socket descriptor to sendfile to). */
const STREAM_CHUNK = 1024 * 1024;

/** `threads`: the sendfile pump's threads (`http.threads`). */
export function registerFilesRoute(app: FastifyInstance, ctx: BootContext, threads?: number): SendfilePump {
  const pump = new SendfilePump(threads);
  app.addHook('onClose', async () => {
    await pump.close();
  });
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
    const out: Output = {
      pump: req.method === 'GET' ? pump : undefined,
      done: (status, bytes, reason) => ctx.recordFetch(mac, requested, bytes, status, reason),
      cut: (end) => ctx.logger.warn({ svc: 'http', mac, file: requested, outcome: end.outcome, sent: end.bytes, reason: end.reason }, 'http file body cut short'),
    };
    return sendFile(reply, served.path, req.headers.range, out);
  });
  return pump;
}

/** Where a file's bytes go out, and what is told of it. */
interface Output {
  /** The sendfile pump, for a GET (a HEAD has no body). */
  pump: SendfilePump | undefined;
  /** The fetch's record: status and bytes announced, or why it was refused. */
  done: (status: number, bytes: number, reason?: string) => void;
  /** A body that did not go out whole (client gone, stalled, file shrank). */
  cut: (end: SendEnd) => void;
}

async function sendFile(reply: FastifyReply, path: string, rangeHeader: string | undefined, out: Output) {
  const { done } = out;
  // O_NOFOLLOW: the resolver realpath'd and checked this path; if its last
  // component was swapped for a symlink since, refuse rather than follow it out of the root.
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    done(404, 0, code === 'ELOOP' ? 'refused: became a symlink' : `not readable: ${code ?? String(err)}`);
    return reply.code(404).type('text/plain').send('not found\n');
  }
  let handedOff = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      done(404, 0, 'refused: not a regular file');
      return reply.code(404).type('text/plain').send('not found\n');
    }
    const size = st.size;
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
    if (out.pump && await sendfileTurn(reply.raw, reply.request.raw.socket)) {
      // From here the response is ours, not Fastify's: headers, body, end.
      reply.hijack();
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
      reply.raw.writeHead(reply.statusCode);
      const end = await sendfileResponse(out.pump, reply.raw, fh.fd, start, length);
      if (end.outcome !== 'ok') out.cut(end);
      return;
    }
    // A HEAD (Fastify drops the body), or no socket descriptor (app.inject): a stream.
    handedOff = true; // the stream closes the handle when it ends, fails or is destroyed
    return reply.send(createReadStream('', { fd: fh, start, end, highWaterMark: STREAM_CHUNK, autoClose: true }));
  } finally {
    if (!handedOff) await fh.close();
  }
}
