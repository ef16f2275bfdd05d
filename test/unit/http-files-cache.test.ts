/**
 * The /files/ route's in-memory copies: served only while the file on disk
 * is the one that was read (rewritten in place or renamed over: the new
 * bytes at the next request), bounded, dropped when idle; files too large
 * for it are streamed; Range and Content-Length the same either way.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync, writeFileSync, renameSync, symlinkSync, utimesSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileCacheOptions, registerFilesRoute, DEFAULT_FILE_CACHE, type FileCache, type FileCacheOptions } from '../../server/http/files-route.js';
import type { BootContext } from '../../server/http/app.js';
import { silentLogger } from '../../server/log.js';

let dir: string;
let app: FastifyInstance;
let cache: FileCache;
let fetches: Array<{ file: string; bytes: number; status: number; reason?: string }>;

function build(opts: Partial<FileCacheOptions> = {}) {
  app = Fastify({ logger: false });
  fetches = [];
  const ctx: BootContext = {
    logger: silentLogger(),
    // A resolver that trusts the name: these tests are about what happens after resolution.
    serve: (p) => ({ kind: 'static', path: join(dir, p) }),
    ipxeScript: () => ({ kind: 'missing', reason: 'not found' }),
    macOfPeer: () => undefined,
    recordFetch: (_mac, file, bytes, status, reason) => { fetches.push({ file, bytes, status, ...(reason ? { reason } : {}) }); },
    checkBooted: () => undefined,
    recordBooted: () => {},
    recordAlive: () => {},
  };
  cache = registerFilesRoute(app, ctx, { ...DEFAULT_FILE_CACHE, ...opts });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-files-cache-'));
});
afterEach(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('/files/ from memory', () => {
  it('serves a cached file whole and by range, and reads it once for many requests at once', async () => {
    build();
    const body = randomBytes(300_000);
    writeFileSync(join(dir, 'initrd'), body);
    const all = await Promise.all(Array.from({ length: 5 }, () => app.inject({ url: '/files/initrd' })));
    for (const r of all) {
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-length']).toBe('300000');
      expect(r.headers['accept-ranges']).toBe('bytes');
      expect(r.rawPayload.equals(body)).toBe(true);
    }
    expect(cache.files).toBe(1);
    expect(cache.bytes).toBe(300_000);
    const part = await app.inject({ url: '/files/initrd', headers: { range: 'bytes=1000-1999' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 1000-1999/300000');
    expect(part.headers['content-length']).toBe('1000');
    expect(part.rawPayload.equals(body.subarray(1000, 2000))).toBe(true);
    expect((await app.inject({ url: '/files/initrd', headers: { range: 'bytes=300000-' } })).statusCode).toBe(416);
    expect(fetches.filter((f) => f.status === 200)).toHaveLength(5);
    expect(fetches.find((f) => f.status === 206)).toEqual({ file: 'initrd', bytes: 1000, status: 206 });
  });

  it('serves the new bytes as soon as the file is rewritten in place or renamed over', async () => {
    build();
    const path = join(dir, 'vmlinuz');
    writeFileSync(path, Buffer.alloc(4096, 1));
    expect((await app.inject({ url: '/files/vmlinuz' })).rawPayload[0]).toBe(1);
    // Same size, same inode; the mtime alone tells (set apart explicitly: a coarse clock could give the same one).
    writeFileSync(path, Buffer.alloc(4096, 2));
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect((await app.inject({ url: '/files/vmlinuz' })).rawPayload[0]).toBe(2);
    writeFileSync(join(dir, 'vmlinuz.new'), Buffer.alloc(5000, 3));
    renameSync(join(dir, 'vmlinuz.new'), path);
    const r = await app.inject({ url: '/files/vmlinuz' });
    expect(r.headers['content-length']).toBe('5000');
    expect(r.rawPayload.equals(Buffer.alloc(5000, 3))).toBe(true);
    expect(cache.files).toBe(1);
    expect(cache.bytes).toBe(5000);
  });

  it('sends a cached file over 1 MiB in turns, whole and by a range across turns', async () => {
    build();
    const body = randomBytes(3 * 1024 * 1024 + 123);
    writeFileSync(join(dir, 'initrd'), body);
    const r = await app.inject({ url: '/files/initrd' });
    expect(r.headers['content-length']).toBe(String(body.length));
    expect(r.rawPayload.equals(body)).toBe(true);
    const part = await app.inject({ url: '/files/initrd', headers: { range: 'bytes=1048000-2097999' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-length']).toBe('1050000');
    expect(part.rawPayload.equals(body.subarray(1048000, 2098000))).toBe(true);
    expect(cache.files).toBe(1);
  });

  it('streams files larger than the per-file limit, whole and by range', async () => {
    build({ maxFileBytes: 100_000 });
    const body = randomBytes(3 * 1024 * 1024 + 7);
    writeFileSync(join(dir, 'big'), body);
    const r = await app.inject({ url: '/files/big' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe(String(body.length));
    expect(r.rawPayload.equals(body)).toBe(true);
    const part = await app.inject({ url: '/files/big', headers: { range: 'bytes=-10' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(body.subarray(body.length - 10))).toBe(true);
    expect(cache.files).toBe(0);
  });

  it('keeps within its byte budget, least recently used out first, and lets idle files go', async () => {
    build({ maxBytes: 250_000, maxFileBytes: 200_000, idleMs: 60_000 });
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, n), Buffer.alloc(100_000, n.charCodeAt(0)));
    await app.inject({ url: '/files/a' });
    await app.inject({ url: '/files/b' });
    await app.inject({ url: '/files/a' }); // a is now the most recent
    await app.inject({ url: '/files/c' }); // over budget: b goes
    expect(cache.files).toBe(2);
    expect(cache.bytes).toBe(200_000);
    const again = await app.inject({ url: '/files/b' }); // still served right, read again
    expect(again.rawPayload.equals(Buffer.alloc(100_000, 'b'.charCodeAt(0)))).toBe(true);
    expect(cache.bytes).toBeLessThanOrEqual(250_000);
    cache.sweep(Date.now() + 61_000);
    expect(cache.files).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('answers 404 and records why when the file went away or became a symlink after resolution', async () => {
    build();
    expect((await app.inject({ url: '/files/gone' })).statusCode).toBe(404);
    writeFileSync(join(dir, 'target'), 'x');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    expect((await app.inject({ url: '/files/link' })).statusCode).toBe(404);
    expect(fetches).toEqual([
      { file: 'gone', bytes: 0, status: 404, reason: 'not readable: ENOENT' },
      { file: 'link', bytes: 0, status: 404, reason: 'refused: became a symlink' },
    ]);
  });

  it('serves an empty file with Content-Length 0', async () => {
    build();
    writeFileSync(join(dir, 'empty'), '');
    const r = await app.inject({ url: '/files/empty' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-length']).toBe('0');
    expect(r.rawPayload.length).toBe(0);
  });

  it('with no memory for it (http.fileCacheMiB: 0) every file is streamed, whole and by range', async () => {
    build(fileCacheOptions(0));
    const body = randomBytes(200_000);
    writeFileSync(join(dir, 'kernel'), body);
    const r = await app.inject({ url: '/files/kernel' });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(body)).toBe(true);
    const part = await app.inject({ url: '/files/kernel', headers: { range: 'bytes=100-199' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(body.subarray(100, 200))).toBe(true);
    expect(cache.files).toBe(0);
    expect(fileCacheOptions(512 * 1024 * 1024).maxFileBytes).toBe(256 * 1024 * 1024);
  });
});
