/**
 * Signals to `sidereal serve` (issue 7): SIGHUP reloads the config file (a bad file or a
 * change only a restart can make is refused, naming the key, and the old config keeps
 * serving; a good one takes effect); SIGTERM lets a transfer in flight finish, refuses new
 * requests, and exits 0. The daemon runs on loopback with DHCP off.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAck, encodeRequest } from '../../server/tftp/packet.js';
import { RawClient } from '../helpers/tftp-fixtures.js';
import { startServe, writeConfig, type Served } from '../helpers/serve.js';

const TFTP_PORT = 16979;
const HTTP_PORT = 18490;
const HTTP_PORT_2 = 18491;
const BIG = Buffer.alloc(1536 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7919) & 0xff;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dir: string;
let configFile: string;
let served: Served | undefined;
const doc = (over: Record<string, unknown> = {}) => ({
  serverAddress: '127.0.0.1', dataDir: join(dir, 'data'), stopGraceSeconds: 20,
  dhcp: { enabled: false, subnet: '127.0.0.0/24' },
  tftp: { root: join(dir, 'tftp'), port: TFTP_PORT },
  http: { listen: '127.0.0.1', port: HTTP_PORT }, api: { enabled: false },
  ...over,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-signals-'));
  mkdirSync(join(dir, 'tftp'));
  writeFileSync(join(dir, 'tftp', 'big.bin'), BIG);
  writeFileSync(join(dir, 'tftp', 'small.bin'), 'small');
  configFile = writeConfig(join(dir, 'sidereal.yaml'), doc());
  served = await startServe(null, configFile);
}, 120_000);

afterAll(async () => {
  await served?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const httpStatus = (port: number, path = '/files/small.bin') =>
  fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status, () => 0);

/** Fetch `file` lock-step at blksize 512, `delayMs` before each ACK; resolves with the bytes, or null on a stall. */
async function slowGet(file: string, delayMs: number, started?: () => void): Promise<Buffer | null> {
  const c = await RawClient.open();
  try {
    await c.send(encodeRequest('RRQ', file, 'octet'), TFTP_PORT);
    const parts: Buffer[] = [];
    for (let expect = 1; ; expect++) {
      const r = await c.next(5000);
      if (!r || r.packet.op !== 'DATA' || r.packet.block !== (expect & 0xffff)) return null;
      parts.push(Buffer.from(r.packet.data));
      if (expect === 1) started?.();
      if (delayMs) await sleep(delayMs);
      await c.send(encodeAck(r.packet.block), r.rinfo.port);
      if (r.packet.data.length < 512) return Buffer.concat(parts);
    }
  } finally {
    c.close();
  }
}

describe('SIGHUP: reload the config', () => {
  it('refuses a file that does not validate, naming the key; the running config keeps serving', async () => {
    writeConfig(configFile, doc({ tftp: { root: join(dir, 'tftp'), port: 99999 } }));
    served!.proc.kill('SIGHUP');
    const refused = await served!.waitFor((l) => l.msg === 'config reload refused: the running config keeps serving', 10_000);
    expect(refused?.field).toBe('tftp.port');
    expect(await httpStatus(HTTP_PORT)).toBe(200);
    expect(sha((await slowGet('small.bin', 0))!)).toBe(sha(Buffer.from('small')));
  });

  it('refuses a change only a restart can make (dataDir), naming it', async () => {
    served!.lines.length = 0;
    writeConfig(configFile, doc({ dataDir: join(dir, 'other-data') }));
    served!.proc.kill('SIGHUP');
    const refused = await served!.waitFor((l) => l.msg === 'config reload refused: the running config keeps serving', 10_000);
    expect(refused?.field).toBe('dataDir');
    expect(String(refused?.error)).toMatch(/needs a restart/);
    expect(await httpStatus(HTTP_PORT)).toBe(200);
  });

  it('takes a good file: the HTTP server moves to its new port', async () => {
    served!.lines.length = 0;
    writeConfig(configFile, doc({ http: { listen: '127.0.0.1', port: HTTP_PORT_2 } }));
    served!.proc.kill('SIGHUP');
    expect(await served!.waitFor((l) => l.msg === 'config reloaded', 30_000)).toBeDefined();
    expect(await httpStatus(HTTP_PORT_2)).toBe(200);
    expect(await httpStatus(HTTP_PORT)).toBe(0); // nothing listens there any more
    expect(sha((await slowGet('small.bin', 0))!)).toBe(sha(Buffer.from('small')));
  });
});

describe('SIGTERM: a graceful stop', () => {
  it('lets a transfer in flight finish, answers no new request, and exits 0', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => { started = r; });
    // 3,072 blocks, 1 ms before each ACK: a few seconds of transfer.
    const transfer = slowGet('big.bin', 1, started);
    await running;
    served!.proc.kill('SIGTERM');
    await served!.waitFor((l) => l.msg === 'tftp stopping: letting the transfers in flight finish', 10_000);
    // A new request now finds no listener.
    const late = await RawClient.open();
    await late.send(encodeRequest('RRQ', 'small.bin', 'octet'), TFTP_PORT);
    const answer = await late.next(1500);
    late.close();
    expect(answer).toBeNull();
    const got = await transfer;
    expect(got && sha(got)).toBe(sha(BIG));
    // No second signal: the daemon exits by itself once the transfer is done.
    expect((await served!.proc).exitCode).toBe(0);
    expect(served!.lines.some((l) => l.msg === 'tftp ok' && l.file === 'big.bin')).toBe(true);
    expect(served!.lines.some((l) => l.msg === 'stopped')).toBe(true);
    served = undefined;
  }, 60_000);
});
