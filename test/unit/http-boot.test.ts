import { describe, it, expect, afterEach } from 'vitest';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { buildHttpApp } from '../../server/http/app.js';
import { serveBootPath, ipxeScriptFor } from '../../server/boot/files.js';
import { parseRange } from '../../server/http/files-route.js';
import { silentLogger } from '../../server/log.js';
import { connect, type Socket } from 'node:net';
import { captureLogger } from '../helpers/tftp-fixtures.js';

let f: Fixture;
afterEach(() => f?.cleanup());
const MAC = '52:54:00:77:00:10';

function app(fx: Fixture, extra: { maxConnections?: number; logger?: ReturnType<typeof silentLogger> } = {}) {
  return buildHttpApp({
    logger: extra.logger ?? silentLogger(),
    ...(extra.maxConnections ? { maxConnections: extra.maxConnections } : {}),
    serve: (p) => serveBootPath(fx.inv, fx.config, p),
    ipxeScript: (m) => ipxeScriptFor(fx.inv, fx.config, m),
    macOfPeer: () => MAC,
    recordFetch: (mac, file, bytes, status) => { if (mac) fx.inv.events.record(mac, 'http', { file, bytes, status }); },
  });
}

describe('HTTP boot', () => {
  it('parses ranges', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('invalid');
    expect(parseRange('bytes=5-2', 100)).toBe('invalid');
    expect(parseRange('items=1-2', 100)).toBe('invalid');
    expect(parseRange(undefined, 100)).toBeUndefined();
  });

  it('serves the per-MAC iPXE script, kernels with Content-Length and Range, and records fetches', async () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { hostname: 'node01', root: 'lab' });
    const a = app(f);
    const script = await a.inject({ url: `/boot/52-54-00-77-00-10.ipxe` });
    expect(script.statusCode).toBe(200);
    expect(script.body).toMatch(/^#!ipxe/);
    const full = await a.inject({ url: '/files/initrd.img-6.1.0@lab' });
    expect(full.statusCode).toBe(200);
    expect(full.headers['content-length']).toBe('100000');
    expect(full.rawPayload.length).toBe(100_000);
    const part = await a.inject({ url: '/files/initrd.img-6.1.0@lab', headers: { range: 'bytes=99990-' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 99990-99999/100000');
    expect(part.rawPayload.length).toBe(10);
    expect((await a.inject({ url: '/files/initrd.img-6.1.0@lab', headers: { range: 'bytes=200000-' } })).statusCode).toBe(416);
    expect((await a.inject({ url: '/files/../../etc/passwd' })).statusCode).toBe(404);
    expect((await a.inject({ url: '/files/%2e%2e/%2e%2e/etc/passwd' })).statusCode).toBe(404);
    expect((await a.inject({ url: '/boot/not-a-mac.ipxe' })).statusCode).toBe(404);
    expect(f.inv.events.list(MAC).map((e) => e.detail.file)).toEqual([`boot/${MAC}.ipxe`, 'initrd.img-6.1.0@lab', 'initrd.img-6.1.0@lab']);
    await a.close();
  });

  it('holds at most http.maxConnections connections: the next is closed unanswered, with a warning; a freed slot serves again', async () => {
    f = makeFixture();
    const { logger, lines } = captureLogger('warn');
    const a = app(f, { maxConnections: 2, logger });
    await a.listen({ host: '127.0.0.1', port: 0 });
    const { port } = a.server.address() as { port: number };
    const open = () => new Promise<Socket>((resolve) => { const s = connect(port, '127.0.0.1', () => resolve(s)); });
    /** One request on a kept-alive connection: its status line, or 'closed' if the server hung up first. */
    const ask = (s: Socket) => new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(String(d).split('\r\n')[0]!));
      s.once('close', () => resolve('closed'));
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    try {
      const [one, two] = [await open(), await open()];
      expect(await ask(one)).toBe('HTTP/1.1 200 OK');
      expect(await ask(two)).toBe('HTTP/1.1 200 OK');
      const three = await open();
      expect(await ask(three)).toBe('closed');
      expect(lines.filter((l) => l.msg === 'http connections over http.maxConnections: closing new ones')).toHaveLength(1);
      one.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const four = await open();
      expect(await ask(four)).toBe('HTTP/1.1 200 OK');
      for (const s of [two, three, four]) s.destroy();
    } finally {
      await a.close();
    }
  });
});
