/**
 * The /files/ route over real TCP on loopback, where bodies go out with
 * sendfile from the native pump (native/http-sendfile): whole and by range,
 * several requests on one kept-alive connection (sent at once, so the next
 * response waits for the pump's end), HEAD, many clients at once, a client
 * that leaves mid-body, and a file rewritten between requests. Then the pump
 * on its own: a client that stops reading (stalled), a file that shrinks
 * under a send (short), a pump closed mid-send, bad arguments. And the
 * stream fallback for a request with no socket (app.inject).
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { closeSync, mkdtempSync, openSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerFilesRoute } from '../../server/http/files-route.js';
import { SendfilePump, socketFd, type SendEnd } from '../../server/http/sendfile.js';
import type { BootContext } from '../../server/http/app.js';
import { silentLogger } from '../../server/log.js';

let dir: string;
let app: FastifyInstance;
let pump: SendfilePump;
let base: string;
let fetches: Array<{ file: string; bytes: number; status: number; reason?: string }>;
let cuts: Array<Record<string, unknown>>;

async function start() {
  app = Fastify({ logger: false });
  fetches = [];
  cuts = [];
  const logger = silentLogger();
  logger.warn = ((o: Record<string, unknown>) => { cuts.push(o); }) as typeof logger.warn;
  const ctx: BootContext = {
    logger,
    // A resolver that trusts the name: these tests are about what happens after resolution.
    serve: (p) => ({ kind: 'static', path: join(dir, p) }),
    ipxeScript: () => ({ kind: 'missing', reason: 'not found' }),
    macOfPeer: () => undefined,
    recordFetch: (_mac, file, bytes, status, reason) => { fetches.push({ file, bytes, status, ...(reason ? { reason } : {}) }); },
    checkBooted: () => undefined,
    recordBooted: () => {},
    recordAlive: () => {},
  };
  pump = registerFilesRoute(app, ctx, 2);
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/files`;
}

/** Raw HTTP/1.1 on one connection: every request written at once, the replies read until `expectBytes` bodies are in. */
function rawRequests(requests: string[], parse: (buf: Buffer) => boolean): Promise<Buffer> {
  const port = Number(new URL(base).port);
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(requests.join('')));
    const chunks: Buffer[] = [];
    s.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (parse(all)) { s.destroy(); resolve(all); }
    });
    s.on('error', reject);
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error('raw requests timed out')); });
  });
}

/** Split a buffer of back-to-back HTTP responses, each with Content-Length; undefined while incomplete. */
function responses(buf: Buffer, n: number): Array<{ head: string; body: Buffer }> | undefined {
  const out: Array<{ head: string; body: Buffer }> = [];
  let off = 0;
  while (out.length < n) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) return undefined;
    const head = buf.subarray(off, end).toString();
    const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + len) return undefined;
    out.push({ head, body: buf.subarray(end + 4, end + 4 + len) });
    off = end + 4 + len;
  }
  return out;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-files-'));
});
afterEach(async () => {
  await app?.close();
  app = undefined as unknown as FastifyInstance;
  rmSync(dir, { recursive: true, force: true });
});

describe('/files/ over TCP, bodies by sendfile', () => {
  it('serves a file whole and by range, with Content-Length, Content-Range and Accept-Ranges', async () => {
    await start();
    const body = randomBytes(5 * 1024 * 1024 + 321);
    writeFileSync(join(dir, 'initrd'), body);
    const r = await fetch(`${base}/initrd`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(body.length));
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await r.arrayBuffer()).equals(body)).toBe(true);
    const part = await fetch(`${base}/initrd`, { headers: { range: 'bytes=1048000-2097999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1048000-2097999/${body.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(body.subarray(1048000, 2098000))).toBe(true);
    const tail = await fetch(`${base}/initrd`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 10))).toBe(true);
    expect((await fetch(`${base}/initrd`, { headers: { range: `bytes=${body.length}-` } })).status).toBe(416);
    // A client can hold its last byte before the pump's end reaches JS (and before the log
    // line): wait for the ends, bounded, rather than race them.
    await expect.poll(() => fetches.length, { timeout: 5000 }).toBe(3);
    expect(fetches.map((f) => [f.status, f.bytes])).toEqual([[200, body.length], [206, 1050000], [206, 10]]);
    expect(pump.active).toBe(0);
    expect(cuts).toEqual([]);
  });

  it('answers requests sent at once on one connection in order: each body after its own headers', async () => {
    await start();
    const kernel = randomBytes(3 * 1024 * 1024 + 5);
    const initrd = randomBytes(2 * 1024 * 1024 + 9);
    writeFileSync(join(dir, 'vmlinuz'), kernel);
    writeFileSync(join(dir, 'initrd'), initrd);
    const get = (p: string, extra = '') => `GET /files/${p} HTTP/1.1\r\nHost: x${extra}\r\n\r\n`;
    const reqs = [get('vmlinuz'), get('initrd'), get('vmlinuz', '\r\nRange: bytes=10-19'), get('missing')];
    const buf = await rawRequests(reqs, (b) => responses(b, 4) !== undefined);
    const rs = responses(buf, 4)!;
    expect(rs.map((r) => r.head.split('\r\n')[0])).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 206 Partial Content', 'HTTP/1.1 404 Not Found']);
    expect(rs[0]!.body.equals(kernel)).toBe(true);
    expect(rs[1]!.body.equals(initrd)).toBe(true);
    expect(rs[2]!.body.equals(kernel.subarray(10, 20))).toBe(true);
  });

  it('answers HEAD with the length and no body', async () => {
    await start();
    writeFileSync(join(dir, 'vmlinuz'), randomBytes(100_000));
    const buf = await rawRequests(['HEAD /files/vmlinuz HTTP/1.1\r\nHost: x\r\n\r\nGET /files/none HTTP/1.1\r\nHost: x\r\n\r\n'],
      (b) => b.toString().includes('not found\n'));
    const text = buf.toString();
    expect(text).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(text).toMatch(/content-length: 100000/i);
    // The next thing on the wire is the second response: no body bytes in between.
    expect(text.split('\r\n\r\n')[1]).toMatch(/^HTTP\/1.1 404/);
  });

  it('serves 30 clients at once, each byte for byte, and frees every send', async () => {
    await start();
    const body = randomBytes(4 * 1024 * 1024 + 77);
    writeFileSync(join(dir, 'initrd'), body);
    const all = await Promise.all(Array.from({ length: 30 }, async () => Buffer.from(await (await fetch(`${base}/initrd`)).arrayBuffer())));
    for (const b of all) expect(b.equals(body)).toBe(true);
    // fetch resolves on the last byte, which can be before the pump's end reaches JS: a send
    // never freed stays active past the bound and fails this.
    await expect.poll(() => pump.active, { timeout: 5000 }).toBe(0);
  });

  it('a client leaving mid-body is logged as cut short; the server serves the next one', async () => {
    await start();
    const body = randomBytes(40 * 1024 * 1024);
    writeFileSync(join(dir, 'initrd'), body);
    const ctl = new AbortController();
    const r = await fetch(`${base}/initrd`, { signal: ctl.signal });
    const reader = r.body!.getReader();
    await reader.read();
    ctl.abort();
    await expect.poll(() => cuts.length, { timeout: 5000 }).toBe(1);
    expect(cuts[0]).toMatchObject({ file: 'initrd', outcome: expect.stringMatching(/^(peer-closed|aborted)$/) });
    expect(cuts[0]!.sent as number).toBeLessThan(body.length);
    expect(pump.active).toBe(0);
    const again = Buffer.from(await (await fetch(`${base}/initrd`, { headers: { range: 'bytes=0-999' } })).arrayBuffer());
    expect(again.equals(body.subarray(0, 1000))).toBe(true);
  });

  it('closes at once after the last body: a connection whose end was still on its way to JS is not left open', async () => {
    await start();
    writeFileSync(join(dir, 'vmlinuz'), randomBytes(1000));
    // The client has its last byte before the pump's end reaches JS; a close begun in between
    // once waited for the client's keep-alive (72 s) on that connection.
    for (let i = 0; i < 20; i++) await (await fetch(`${base}/vmlinuz`)).arrayBuffer();
    const t0 = Date.now();
    await app.close();
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('serves the new bytes as soon as the file is rewritten in place or renamed over', async () => {
    await start();
    const path = join(dir, 'vmlinuz');
    writeFileSync(path, Buffer.alloc(4096, 1));
    expect(Buffer.from(await (await fetch(`${base}/vmlinuz`)).arrayBuffer())[0]).toBe(1);
    writeFileSync(path, Buffer.alloc(4096, 2));
    expect(Buffer.from(await (await fetch(`${base}/vmlinuz`)).arrayBuffer())[0]).toBe(2);
    writeFileSync(join(dir, 'vmlinuz.new'), Buffer.alloc(5000, 3));
    renameSync(join(dir, 'vmlinuz.new'), path);
    const r = await fetch(`${base}/vmlinuz`);
    expect(r.headers.get('content-length')).toBe('5000');
    expect(Buffer.from(await r.arrayBuffer()).equals(Buffer.alloc(5000, 3))).toBe(true);
  });
});

describe('the sendfile pump on its own', () => {
  let server: Server;
  let accepted: Socket[];
  let client: Socket;
  let own: SendfilePump;

  /** A connected pair on loopback: the server end (to send on) and a client end that reads only when told. */
  async function pair(): Promise<Socket> {
    accepted = [];
    server = createServer((s) => accepted.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.pause();
    await expect.poll(() => accepted.length).toBe(1);
    return accepted[0]!;
  }

  afterEach(async () => {
    client?.destroy();
    for (const s of accepted ?? []) s.destroy();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await own?.close();
  });

  it('ends a send to a client that stops reading as stalled, after the stall limit', async () => {
    own = new SendfilePump(1);
    const sock = await pair();
    const file = join(dir, 'big');
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024));
    const fd = openSync(file, 'r');
    const end = await new Promise<SendEnd>((resolve) => { own.start(socketFd(sock)!, fd, 0, 64 * 1024 * 1024, 300, resolve); closeSync(fd); });
    expect(end.outcome).toBe('stalled');
    expect(end.bytes).toBeGreaterThan(0);
    expect(end.bytes).toBeLessThan(64 * 1024 * 1024);
  });

  it('ends a send as short when the file shrinks under it, saying where', async () => {
    own = new SendfilePump(1);
    const sock = await pair();
    const file = join(dir, 'shrinks');
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 7));
    const fd = openSync(file, 'r');
    const ended = new Promise<SendEnd>((resolve) => own.start(socketFd(sock)!, fd, 0, 64 * 1024 * 1024, 10_000, resolve));
    closeSync(fd);
    // The client reads nothing yet: the socket buffers fill far below 64 MiB, then the file is cut to 1 byte.
    await new Promise((r) => setTimeout(r, 200));
    truncateSync(file, 1);
    client.resume();
    const end = await ended;
    expect(end.outcome).toBe('short');
    expect(end.reason).toMatch(/before the 67108864 announced/);
  });

  it('ends every send in flight as closed when the pump closes', async () => {
    own = new SendfilePump(2);
    const sock = await pair();
    const file = join(dir, 'big');
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024));
    const fd = openSync(file, 'r');
    const ended = new Promise<SendEnd>((resolve) => own.start(socketFd(sock)!, fd, 0, 64 * 1024 * 1024, 10_000, resolve));
    closeSync(fd);
    await new Promise((r) => setTimeout(r, 100));
    await own.close();
    expect((await ended).outcome).toBe('closed');
    expect(() => own.start(socketFd(sock)!, 0, 0, 1, 1000, () => {})).toThrow(/closed/);
  });

  it('refuses bad arguments with the argument named', async () => {
    own = new SendfilePump(1);
    expect(() => new SendfilePump(0)).toThrow(/threads must be a whole number >= 1, got 0/);
    expect(() => own.start(-1, 0, 0, 1, 1000, () => {})).toThrow(/socketFd must be a descriptor/);
    expect(() => own.start(0, -1, 0, 1, 1000, () => {})).toThrow(/fileFd must be a descriptor/);
    expect(() => own.start(0, 0, -5, 1, 1000, () => {})).toThrow(/offset must be an integer >= 0/);
    expect(() => own.start(0, 0, 0, 1.5, 1000, () => {})).toThrow(/length must be an integer >= 0/);
    expect(() => own.start(0, 0, 0, 1, 0, () => {})).toThrow(/stallMs must be an integer >= 1/);
    expect(() => own.start(987_654, 0, 0, 1, 1000, () => {})).toThrow(/dup: Bad file descriptor/);
    expect(own.active).toBe(0);
  });
});

describe('/files/ without a socket (app.inject): streamed', () => {
  it('serves whole, by range, 416, an empty file, and 404 with the reason when gone or a symlink', async () => {
    await start();
    const body = randomBytes(3 * 1024 * 1024 + 7);
    writeFileSync(join(dir, 'big'), body);
    const r = await app.inject({ url: '/files/big' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe(String(body.length));
    expect(r.rawPayload.equals(body)).toBe(true);
    const part = await app.inject({ url: '/files/big', headers: { range: 'bytes=-10' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(body.subarray(body.length - 10))).toBe(true);
    expect((await app.inject({ url: '/files/big', headers: { range: 'bytes=9999999999-' } })).statusCode).toBe(416);
    writeFileSync(join(dir, 'empty'), '');
    const empty = await app.inject({ url: '/files/empty' });
    expect(empty.headers['content-length']).toBe('0');
    expect(empty.rawPayload.length).toBe(0);
    fetches.length = 0;
    expect((await app.inject({ url: '/files/gone' })).statusCode).toBe(404);
    writeFileSync(join(dir, 'target'), 'x');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    expect((await app.inject({ url: '/files/link' })).statusCode).toBe(404);
    expect(fetches).toEqual([
      { file: 'gone', bytes: 0, status: 404, reason: 'not readable: ENOENT' },
      { file: 'link', bytes: 0, status: 404, reason: 'refused: became a symlink' },
    ]);
  });
});
