/**
 * The traversal corpus (issue 7): names that try to leave the TFTP root, sent to the real
 * daemon (`sidereal serve` on loopback, DHCP off) over TFTP (a raw client: any bytes) and
 * over HTTP (raw request lines: no client-side normalisation of `..` or `%2e`). Every one is
 * refused, or (an absolute or literal name) looked up inside the root and not found; none
 * returns a byte of a file outside the root; each leaves a log line with its reason.
 */
import { connect } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAck, encodeRequest } from '../../server/tftp/packet.js';
import { RawClient } from '../helpers/tftp-fixtures.js';
import { startServe, writeConfig, type Served } from '../helpers/serve.js';

const TFTP_PORT = 16969;
const HTTP_PORT = 18480;
const SECRET = 'host secret: never served';

let dir: string;
let served: Served | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-corpus-'));
  const tftp = join(dir, 'tftp');
  mkdirSync(join(tftp, 'efi64'), { recursive: true });
  mkdirSync(join(dir, 'outside'), { recursive: true });
  mkdirSync(join(dir, 'roots', 'lab', 'gen-1', 'boot'), { recursive: true });
  writeFileSync(join(tftp, 'pxelinux.0'), 'the bootloader');
  writeFileSync(join(dir, 'outside', 'secret'), SECRET);
  writeFileSync(join(dir, 'roots', 'lab', 'gen-1', 'boot', 'vmlinuz'), SECRET);
  // Links: out of the root to a file, to a directory, into a root generation; one inside (followed).
  symlinkSync(join(dir, 'outside', 'secret'), join(tftp, 'escape'));
  symlinkSync('../outside', join(tftp, 'escape-dir'));
  symlinkSync(join(dir, 'roots', 'lab', 'gen-1'), join(tftp, 'gen'));
  symlinkSync(join(dir, 'roots', 'lab', 'gen-1', 'boot', 'vmlinuz'), join(tftp, 'vmlinuz-6.1@lab'));
  symlinkSync('pxelinux.0', join(tftp, 'inside-link'));
  const config = writeConfig(join(dir, 'sidereal.yaml'), {
    serverAddress: '127.0.0.1', dataDir: join(dir, 'data'),
    dhcp: { enabled: false, subnet: '127.0.0.0/24' },
    tftp: { root: tftp, port: TFTP_PORT },
    http: { listen: '127.0.0.1', port: HTTP_PORT }, api: { enabled: false },
  });
  served = await startServe(null, config);
}, 120_000);

afterAll(async () => {
  expect(await served?.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

/** [name as sent, what the log must say]: `refused` (a refusal) or `not-found` (looked up inside the root). */
const TFTP_CORPUS: Array<[string, 'refused' | 'not-found']> = [
  ['../outside/secret', 'refused'],
  ['../../../../../../etc/passwd', 'refused'],
  ['efi64/../../outside/secret', 'refused'],
  ['pxelinux.cfg/../../outside/secret', 'refused'],
  ['..\\outside\\secret', 'refused'],
  ['efi64\\..\\..\\etc\\passwd', 'refused'],
  ['a'.repeat(300), 'refused'],
  ['a/'.repeat(140) + 'x', 'refused'],
  ['escape', 'refused'],
  ['escape-dir/secret', 'refused'],
  ['gen/boot/vmlinuz', 'refused'],
  ['vmlinuz-6.1@lab', 'refused'],
  ['efi64', 'refused'],
  ['/etc/passwd', 'not-found'], // absolute names mean the root's own (firmware sends both forms)
  ['%2e%2e/outside/secret', 'not-found'], // TFTP names are literal: never percent-decoded
  ['..%2foutside%2fsecret', 'not-found'],
];

/** Raw HTTP/1.1 request: the path goes on the wire exactly as written here. */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(HTTP_PORT, '127.0.0.1');
    let data = '';
    sock.setTimeout(10_000, () => { sock.destroy(); reject(new Error(`no answer for ${path}`)); });
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('error', reject);
    sock.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}

const HTTP_CORPUS: Array<[string, 'refused' | 'not-found']> = [
  ['/files/%2e%2e/outside/secret', 'refused'],
  ['/files/%2E%2E%2Foutside%2Fsecret', 'refused'],
  ['/files/..%2f..%2f..%2fetc%2fpasswd', 'refused'],
  ['/files/efi64/%2e%2e/%2e%2e/outside/secret', 'refused'],
  ['/files/..%5coutside%5csecret', 'refused'],
  ['/files/pxelinux.0%00../../outside/secret', 'refused'],
  ['/files/' + 'a'.repeat(300), 'refused'],
  ['/files/escape', 'refused'],
  ['/files/escape-dir/secret', 'refused'],
  ['/files/gen/boot/vmlinuz', 'refused'],
  ['/files/vmlinuz-6.1@lab', 'refused'],
  ['/files/%252e%252e/outside/secret', 'not-found'], // decoded once: the literal name %2e%2e
];

describe('the traversal corpus against the daemon', () => {
  it('TFTP: every name refused or not found inside the root, a log line each, no byte of an outside file', async () => {
    const c = await RawClient.open();
    try {
      for (const [name, outcome] of TFTP_CORPUS) {
        await c.send(encodeRequest('RRQ', name, 'octet'), TFTP_PORT);
        const r = await c.next(5000);
        expect(r?.packet.op, name).toBe('ERROR');
        const line = await served!.waitFor((l) => l.svc === 'tftp' && l.file === name && typeof l.outcome === 'string', 5000);
        expect(line?.outcome, name).toBe(outcome);
        expect(String(line?.reason), name).toMatch(outcome === 'refused' ? /^refused/ : /not found/);
        if (outcome === 'refused') expect(line?.level, name).toBe(40); // warn
      }
      // A NUL ends a TFTP name on the wire: what follows it is read as the mode, and refused as one.
      await c.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('pxelinux.0\0../../outside/secret\0')]), TFTP_PORT);
      expect((await c.next(5000))?.packet.op).toBe('ERROR');
      const mode = await served!.waitFor((l) => l.svc === 'tftp' && l.file === 'pxelinux.0' && l.outcome === 'rejected', 5000);
      expect(mode?.reason).toBe('mode ../../outside/secret');
      // The control: a link inside the root is followed, so the refusals above are not a blanket "no links".
      await c.send(encodeRequest('RRQ', 'inside-link', 'octet'), TFTP_PORT);
      const data = await c.next(5000);
      expect(data?.packet.op === 'DATA' && data.packet.data.toString()).toBe('the bootloader');
      await c.send(encodeAck(1), data!.rinfo.port);
    } finally {
      c.close();
    }
    expect(JSON.stringify(served!.lines)).not.toContain(SECRET);
  });

  it('HTTP: every path refused or not found inside the root, a log line each, no byte of an outside file', async () => {
    for (const [path, outcome] of HTTP_CORPUS) {
      const r = await rawGet(path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.body, path).not.toContain(SECRET);
      const file = decodeURIComponent(path.slice('/files/'.length));
      const line = await served!.waitFor((l) => l.svc === 'http' && l.msg === 'http fetch' && l.file === file, 5000);
      expect(line, `log line for ${path}`).toBeDefined();
      expect(String(line?.reason), path).toMatch(outcome === 'refused' ? /^refused/ : /not found/);
    }
    const ok = await rawGet('/files/inside-link');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('the bootloader');
  });
});
