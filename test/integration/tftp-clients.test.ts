/**
 * Sidereal's TFTP server against the real clients of Debian: tftp-hpa,
 * atftp and curl, on 127.0.0.1 with the server in-process.
 */
import { execa } from 'execa';
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveStatic } from '../../server/tftp/files.js';
import { startTftpServer, type TftpServer, type TransferEvent } from '../../server/tftp/server.js';
import { captureLogger, makeTempRoot, sha256, sha256File, writeRandomFile } from '../helpers/tftp-fixtures.js';

const HOST = '127.0.0.1';
const VIRTUAL = Buffer.from('#!ipxe\nchain http://10.0.0.1/boot.ipxe?mac=${net0/mac}\n'.repeat(40));

let root: { dir: string; cleanup(): Promise<void> };
let out: { dir: string; cleanup(): Promise<void> };
let server: TftpServer;
const events: TransferEvent[] = [];
const { logger, lines } = captureLogger('debug');
const sums: Record<string, string> = {};

beforeAll(async () => {
  root = await makeTempRoot();
  out = await makeTempRoot('sidereal-tftp-out-');
  await mkdir(path.join(root.dir, 'boot'));
  sums['boot/random3m.bin'] = await writeRandomFile(path.join(root.dir, 'boot/random3m.bin'), 3 * 1024 * 1024 + 123);
  sums['empty.bin'] = await writeRandomFile(path.join(root.dir, 'empty.bin'), 0);
  sums['exact1468.bin'] = await writeRandomFile(path.join(root.dir, 'exact1468.bin'), 1468 * 700);
  sums['exact512.bin'] = await writeRandomFile(path.join(root.dir, 'exact512.bin'), 512 * 300);
  sums['big40m.bin'] = await writeRandomFile(path.join(root.dir, 'big40m.bin'), 40 * 1024 * 1024 + 77);
  await writeFile(path.join(out.dir, 'secret.txt'), 'outside the root\n');
  await symlink(path.join(out.dir, 'secret.txt'), path.join(root.dir, 'escape.txt'));
  await symlink('boot/random3m.bin', path.join(root.dir, 'inside-link.bin'));
  server = await startTftpServer({
    address: HOST,
    port: 0,
    logger,
    resolve: (p) => (p === 'menu/virtual.ipxe' ? { kind: 'virtual', content: VIRTUAL, mac: '52:54:00:77:00:10' } : resolveStatic(root.dir, p)),
    onTransfer: (ev) => events.push(ev),
  });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await root?.cleanup();
  await out?.cleanup();
});

const outFile = (name: string) => path.join(out.dir, `${name.replace(/\//g, '_')}.${Math.random().toString(36).slice(2)}`);
const lastEvent = (file: string) => [...events].reverse().find((e) => e.file === file);

async function curl(file: string, dest: string, blksize?: number) {
  // --path-as-is: otherwise curl removes `..` itself and the server never sees the attack.
  const args = ['-sS', '--path-as-is', '--max-time', '240', '-o', dest];
  if (blksize) args.push('--tftp-blksize', String(blksize));
  return execa('curl', [...args, `tftp://${HOST}:${server.port}/${file}`], { reject: false });
}

describe('curl', () => {
  for (const [file, blk] of [
    ['boot/random3m.bin', 1468], ['empty.bin', 1468], ['exact1468.bin', 1468], ['exact512.bin', undefined],
    ['boot/random3m.bin', 8192], ['inside-link.bin', 1468],
  ] as const) {
    it(`fetches ${file} at blksize ${blk ?? 'default'}`, async () => {
      const dest = outFile(file);
      const r = await curl(file, dest, blk);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const want = file === 'inside-link.bin' ? sums['boot/random3m.bin'] : sums[file];
      expect(await sha256File(dest)).toBe(want);
      const ev = lastEvent(file);
      expect(ev?.outcome).toBe('ok');
      if (blk) expect(ev?.blksize).toBe(blk);
    }, 120_000);
  }

  it('serves 40 MiB at blksize 512 through block number rollover', async () => {
    const dest = outFile('big40m.bin');
    const r = await curl('big40m.bin', dest, 512);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await stat(dest)).size).toBe(40 * 1024 * 1024 + 77);
    expect(await sha256File(dest)).toBe(sums['big40m.bin']);
    expect(lastEvent('big40m.bin')?.outcome).toBe('ok');
  }, 300_000);

  it('serves a virtual file from the resolve callback byte-exact, with its MAC in the event', async () => {
    const dest = outFile('virtual');
    const r = await curl('menu/virtual.ipxe', dest, 1468);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await sha256File(dest)).toBe(sha256(VIRTUAL));
    const ev = lastEvent('menu/virtual.ipxe');
    expect(ev).toMatchObject({ outcome: 'ok', mac: '52:54:00:77:00:10', bytes: VIRTUAL.length });
    const line = lines.find((l) => l.file === 'menu/virtual.ipxe' && l.outcome === 'ok');
    expect(line).toMatchObject({ mac: '52:54:00:77:00:10', bytes: VIRTUAL.length, blksize: 1468 });
    expect(line).toHaveProperty('ms');
    expect(line).toHaveProperty('peer');
  }, 60_000);

  for (const evil of ['../etc/passwd', 'a/../../b', 'escape.txt', 'boot/../../x']) {
    it(`refuses ${evil}`, async () => {
      const r = await curl(evil, outFile('evil'));
      expect(r.exitCode).not.toBe(0);
      const line = lines.find((l) => l.file === evil && (l.outcome === 'refused' || l.outcome === 'not-found'));
      expect(line, `log line for ${evil}`).toBeDefined();
      expect(String(line?.reason)).toMatch(/refused/);
    }, 60_000);
  }
});

describe('tftp-hpa', () => {
  it('gets a file in binary mode (no options: DATA 1 first, 512-byte blocks)', async () => {
    const dest = outFile('hpa');
    const r = await execa('tftp', ['-m', 'binary', HOST, String(server.port), '-c', 'get', 'boot/random3m.bin', dest], { reject: false, timeout: 240_000 });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await sha256File(dest)).toBe(sums['boot/random3m.bin']);
    expect(lastEvent('boot/random3m.bin')).toMatchObject({ outcome: 'ok', blksize: 512, windowsize: 1, tsize: null });
  }, 240_000);

  it('a put (WRQ) is refused with an access violation', async () => {
    const src = path.join(out.dir, 'upload.txt');
    await writeFile(src, 'hello\n');
    const r = await execa('tftp', ['-m', 'binary', HOST, String(server.port), '-c', 'put', src, 'upload.txt'], { reject: false, timeout: 60_000 });
    expect(r.stdout + r.stderr).toMatch(/write requests are not accepted/);
    expect(lastEvent('upload.txt')?.outcome).toBe('rejected');
  }, 60_000);

  it('traversal through tftp-hpa is refused', async () => {
    const r = await execa('tftp', ['-m', 'binary', HOST, String(server.port), '-c', 'get', '../../etc/passwd', outFile('x')], { reject: false, timeout: 60_000 });
    expect(r.stdout + r.stderr).toMatch(/not found/i);
    expect(lines.some((l) => l.file === '../../etc/passwd' && l.outcome === 'refused')).toBe(true);
  }, 60_000);
});

describe('atftp', () => {
  async function atftp(file: string, dest: string, options: string[]) {
    const args = ['--get', '-r', file, '-l', dest];
    for (const o of options) args.push('--option', o);
    return execa('atftp', [...args, HOST, String(server.port)], { reject: false, timeout: 240_000 });
  }

  for (const opts of [
    ['blksize 1468', 'tsize 0', 'windowsize 8'],
    ['blksize 1468', 'tsize 0', 'windowsize 16'],
    ['blksize 1468', 'windowsize disable'],
    ['blksize 512', 'windowsize 4'],
  ]) {
    it(`gets a file with ${opts.join(', ')}`, async () => {
      const dest = outFile('atftp');
      const r = await atftp('boot/random3m.bin', dest, opts);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(await sha256File(dest)).toBe(sums['boot/random3m.bin']);
      const ev = lastEvent('boot/random3m.bin');
      expect(ev?.outcome).toBe('ok');
      const ws = opts.find((o) => o.startsWith('windowsize'))!.split(' ')[1]!;
      expect(ev?.windowsize).toBe(ws === 'disable' ? 1 : Number(ws));
    }, 240_000);
  }

  it('gets an empty file and an exact multiple of blksize', async () => {
    for (const file of ['empty.bin', 'exact1468.bin']) {
      const dest = outFile(file);
      const r = await atftp(file, dest, ['blksize 1468', 'tsize 0', 'windowsize 8']);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(await sha256File(dest)).toBe(sums[file]);
    }
  }, 120_000);

  it('windowed transfer through block number rollover (40 MiB, blksize 512, windowsize 16)', async () => {
    const dest = outFile('big40m-atftp');
    const r = await atftp('big40m.bin', dest, ['blksize 512', 'tsize 0', 'windowsize 16']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await sha256File(dest)).toBe(sums['big40m.bin']);
    expect(lastEvent('big40m.bin')).toMatchObject({ outcome: 'ok', windowsize: 16, blksize: 512, tsize: 40 * 1024 * 1024 + 77 });
  }, 300_000);

  it('traversal through atftp is refused', async () => {
    const r = await atftp('/../x', outFile('x'), []);
    expect(r.exitCode).not.toBe(0);
    expect(lines.some((l) => l.file === '/../x' && l.outcome === 'refused')).toBe(true);
  }, 60_000);
});
