/**
 * Protocol behaviour driven packet by packet from a raw UDP client: the
 * UEFI size probe, sorcerer's apprentice, windows and gaps, retransmission
 * limits, option handling and malformed input. Counts are exact; nothing
 * here depends on how fast the machine is (timeouts are generous bounds).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveStatic } from '../../server/tftp/files.js';
import { encodeAck, encodeError, encodeRequest, ErrorCode, type OptionList } from '../../server/tftp/packet.js';
import { startTftpServer, type TftpServer, type TftpServerOptions, type TransferEvent } from '../../server/tftp/server.js';
import { captureLogger, makeTempRoot, RawClient, sha256, sha256File, writeRandomFile } from '../helpers/tftp-fixtures.js';

let root: { dir: string; cleanup(): Promise<void> };
const SIZE = 100 * 1468 + 17; // 101 blocks at 1468
let sum = '';
const servers: TftpServer[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  root = await makeTempRoot();
  sum = await writeRandomFile(path.join(root.dir, 'syslinux.efi'), SIZE);
  await writeRandomFile(path.join(root.dir, 'small.bin'), 20 * 512 + 5);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  await root?.cleanup();
});

async function serve(extra: Partial<TftpServerOptions> = {}) {
  const cap = captureLogger('debug');
  const events: TransferEvent[] = [];
  const server = await startTftpServer({
    address: '127.0.0.1', port: 0, logger: cap.logger,
    resolve: (p) => resolveStatic(root.dir, p),
    onTransfer: (ev) => events.push(ev),
    timeoutMs: 10_000, // no retransmission unless a test asks for it
    ...extra,
  });
  servers.push(server);
  const waitEvent = async (pred: (e: TransferEvent) => boolean): Promise<TransferEvent> => {
    for (let i = 0; i < 600; i++) {
      const e = events.find(pred);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no matching transfer event within 30 s');
  };
  return { server, events, lines: cap.lines, waitEvent };
}

async function client() {
  const c = await RawClient.open();
  clients.push(c);
  return c;
}

const optsOf = (o: OptionList) => Object.fromEntries(o);

/** Receive a whole file with windowed ACKs (ACK at each window end, RFC 7440). */
async function receive(c: RawClient, tid: number, blksize: number, windowsize: number, firstAck = true): Promise<Buffer> {
  const parts: Buffer[] = [];
  let expect = 1;
  if (firstAck) await c.send(encodeAck(0), tid);
  for (;;) {
    const r = await c.next();
    if (!r) throw new Error(`stalled waiting for block ${expect}`);
    if (r.packet.op !== 'DATA') throw new Error(`unexpected ${r.packet.op}`);
    if (r.packet.block !== (expect & 0xffff)) continue;
    parts.push(Buffer.from(r.packet.data));
    const last = r.packet.data.length < blksize;
    if (last || expect % windowsize === 0) await c.send(encodeAck(expect), tid);
    if (last) return Buffer.concat(parts);
    expect++;
  }
}

describe('UEFI tsize probe', () => {
  it('ERROR 8 after the OACK ends quietly; the second RRQ gets the whole file', async () => {
    const { events, lines, waitEvent } = await serve();
    const probe = await client();
    await probe.send(encodeRequest('RRQ', 'syslinux.efi', 'octet', [['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']]), servers.at(-1)!.port);
    const oack = await probe.next();
    expect(oack?.packet.op).toBe('OACK');
    if (oack?.packet.op !== 'OACK') return;
    expect(optsOf(oack.packet.options)).toEqual({ tsize: String(SIZE), blksize: '1468', windowsize: '4' });
    await probe.send(encodeError(ErrorCode.OPTION_NEGOTIATION, 'User aborted the transfer'), oack.rinfo.port);
    const ev = await waitEvent((e) => e.outcome === 'aborted-probe');
    expect(ev).toMatchObject({ file: 'syslinux.efi', tsize: SIZE, bytes: 0 });
    const line = lines.find((l) => l.outcome === 'aborted-probe');
    expect(line?.level).toBe(20); // debug
    expect(lines.some((l) => (l.level as number) >= 40)).toBe(false); // no warn

    const real = await client();
    await real.send(encodeRequest('RRQ', 'syslinux.efi', 'octet', [['blksize', '1468'], ['windowsize', '4']]), servers.at(-1)!.port);
    const oack2 = await real.next();
    expect(oack2?.packet.op).toBe('OACK');
    if (oack2?.packet.op !== 'OACK') return;
    expect(optsOf(oack2.packet.options)).toEqual({ blksize: '1468', windowsize: '4' });
    const data = await receive(real, oack2.rinfo.port, 1468, 4);
    expect(sha256(data)).toBe(sum);
    expect((await waitEvent((e) => e.outcome === 'ok')).windowsize).toBe(4);
    expect(events.filter((e) => e.outcome !== 'ok' && e.outcome !== 'aborted-probe')).toEqual([]);
  }, 60_000);
});

describe('sorcerer\'s apprentice', () => {
  it('duplicate and old ACKs never cause extra DATA (lock-step)', async () => {
    const { server, waitEvent } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    let tid = 0;
    for (let block = 1; ; block++) {
      const r = await c.next();
      expect(r?.packet.op).toBe('DATA');
      if (r?.packet.op !== 'DATA') return;
      tid = r.rinfo.port;
      expect(r.packet.block).toBe(block);
      const last = r.packet.data.length < 512;
      // Each ACK three times, plus an old one: an apprentice server would answer every copy.
      for (let k = 0; k < 3; k++) await c.send(encodeAck(block), tid);
      if (block > 2) await c.send(encodeAck(block - 2), tid);
      if (last) break;
    }
    expect((await waitEvent((e) => e.file === 'small.bin')).outcome).toBe('ok');
    expect(await c.drain(300)).toEqual([]);
    expect([...c.dataCount.values()].every((n) => n === 1)).toBe(true);
    expect(c.dataCount.size).toBe(21);
  }, 60_000);

  it('duplicate window-end ACKs do not resend a window (windowsize 4)', async () => {
    const { server, waitEvent } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet', [['windowsize', '4']]), server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    const tid = oack.rinfo.port;
    for (let k = 0; k < 3; k++) await c.send(encodeAck(0), tid);
    for (let block = 1; ; block++) {
      const r = await c.next();
      if (r?.packet.op !== 'DATA') throw new Error('expected DATA');
      expect(r.packet.block).toBe(block);
      const last = r.packet.data.length < 512;
      if (last || block % 4 === 0) for (let k = 0; k < 3; k++) await c.send(encodeAck(block), tid);
      if (last) break;
    }
    expect((await waitEvent((e) => e.file === 'small.bin')).outcome).toBe('ok');
    expect(await c.drain(300)).toEqual([]);
    expect([...c.dataCount.values()].every((n) => n === 1)).toBe(true);
  }, 60_000);
});

describe('windows and retransmission', () => {
  it('an ACK inside the window (a gap, RFC 7440) restarts the window after it', async () => {
    const { server } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet', [['windowsize', '4']]), server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    const tid = oack.rinfo.port;
    await c.send(encodeAck(0), tid);
    const first = [];
    for (let i = 0; i < 4; i++) first.push((await c.next())?.packet);
    expect(first.map((p) => (p?.op === 'DATA' ? p.block : -1))).toEqual([1, 2, 3, 4]);
    await c.send(encodeAck(2), tid);
    const again = [];
    for (let i = 0; i < 4; i++) again.push((await c.next())?.packet);
    expect(again.map((p) => (p?.op === 'DATA' ? p.block : -1))).toEqual([3, 4, 5, 6]);
    await c.send(encodeError(0, 'test done'), tid);
  }, 60_000);

  it('resends on timeout, gives up after `retries`, and reports it', async () => {
    const { server, waitEvent } = await serve({ timeoutMs: 200, retries: 2 });
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    const ev = await waitEvent((e) => e.file === 'small.bin');
    expect(ev.outcome).toBe('timeout');
    const got = await c.drain(300);
    const data = got.filter((r) => r.packet.op === 'DATA');
    expect(data.length).toBe(3); // the first send and 2 retries
    expect(got.at(-1)?.packet.op).toBe('ERROR');
    expect(server.stats.active).toBe(0);
  }, 60_000);

  it('honours the timeout option (RFC 2349) and acknowledges it', async () => {
    const { server } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet', [['timeout', '1'], ['tsize', '0']]), server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    expect(optsOf(oack.packet.options)).toEqual({ timeout: '1', tsize: String(20 * 512 + 5) });
    await c.send(encodeAck(0), oack.rinfo.port);
    // Not acknowledged: with a 1 s interval DATA 1 comes again (the 10 s default would not within the bound).
    const a = await c.next(8000);
    const b = await c.next(8000);
    expect([a?.packet.op, b?.packet.op]).toEqual(['DATA', 'DATA']);
    await c.send(encodeError(0, 'test done'), oack.rinfo.port);
  }, 60_000);
});

describe('options and odd input', () => {
  it('ignores unknown options and garbage values; no acknowledged option means DATA 1 first', async () => {
    const { server } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet', [['windowsize', 'disable'], ['foo', 'bar'], ['blksize', 'x']]), server.port);
    const r = await c.next();
    expect(r?.packet.op).toBe('DATA');
    if (r?.packet.op === 'DATA') expect(r.packet.data.length).toBe(512);
    await c.send(encodeError(0, 'test done'), r!.rinfo.port);
  }, 30_000);

  it('caps blksize to the configured maximum', async () => {
    const { server } = await serve({ maxBlksize: 1024 });
    const c = await client();
    await c.send(encodeRequest('RRQ', 'syslinux.efi', 'OCTET', [['BLKSIZE', '65464'], ['windowsize', 'disable']]), server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    expect(oack.packet.options).toEqual([['blksize', '1024']]);
    expect(sha256(await receive(c, oack.rinfo.port, 1024, 1))).toBe(sum);
  }, 30_000);

  it('drops malformed packets, keeps serving, refuses netascii', async () => {
    const { server } = await serve();
    const c = await client();
    for (const junk of [Buffer.from([0]), Buffer.from([0, 9, 1, 2]), Buffer.from([0, 1, 0x61, 0x62]), Buffer.from([0, 4, 0, 1]),
      Buffer.from([0, 1, 0x61, 0, 0x6f, 0x63, 0x74, 0x65, 0x74, 0, 0x62, 0x6c, 0x6b, 0]), Buffer.from([0, 1, 0xff, 0xfe, 0, 0x6f, 0])]) {
      await c.send(junk, server.port);
    }
    await c.send(encodeRequest('RRQ', 'small.bin', 'netascii'), server.port);
    const err = await c.next();
    expect(err?.packet).toMatchObject({ op: 'ERROR', code: ErrorCode.ILLEGAL_OPERATION });
    const c2 = await client();
    await c2.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    const parts: Buffer[] = [];
    for (let block = 1; ; block++) {
      const r = await c2.next();
      if (r?.packet.op !== 'DATA') throw new Error('expected DATA');
      parts.push(Buffer.from(r.packet.data));
      await c2.send(encodeAck(block), r.rinfo.port);
      if (r.packet.data.length < 512) break;
    }
    expect(sha256(Buffer.concat(parts))).toBe(await sha256File(path.join(root.dir, 'small.bin')));
    expect(server.stats.malformed).toBe(5); // the ACK on port 69 is well-formed, just dropped
  }, 30_000);

  it('a retransmitted RRQ does not start a second session', async () => {
    const { server, events, waitEvent } = await serve();
    const c = await client();
    const rrq = encodeRequest('RRQ', 'small.bin', 'octet', [['tsize', '0']]);
    await c.send(rrq, server.port);
    await c.send(rrq, server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    await receive(c, oack.rinfo.port, 512, 1);
    await waitEvent((e) => e.outcome === 'ok');
    expect(await c.drain(300)).toEqual([]);
    expect(events.length).toBe(1);
  }, 30_000);

  it('caps the transfers one client address may hold; a slot frees when one ends (issue 7)', async () => {
    const { server, waitEvent } = await serve({ maxSessionsPerClient: 3 });
    const open: Array<{ c: RawClient; tid: number }> = [];
    for (let i = 0; i < 3; i++) {
      const c = await client();
      await c.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
      const r = await c.next();
      expect(r?.packet.op).toBe('DATA'); // no ACK: the session stays open (10 s timeout)
      open.push({ c, tid: r!.rinfo.port });
    }
    const fourth = await client();
    await fourth.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    expect((await fourth.next())?.packet).toMatchObject({ op: 'ERROR', message: 'server busy' });
    const busy = await waitEvent((e) => e.outcome === 'refused');
    expect(busy.reason).toBe('3 sessions already open from 127.0.0.1 (limit 3)');
    // One client gives up: its slot is free again.
    await open[0]!.c.send(encodeError(0, 'gave up'), open[0]!.tid);
    await waitEvent((e) => e.outcome === 'client-error');
    await fourth.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    expect((await fourth.next())?.packet.op).toBe('DATA');
    expect(server.stats.active).toBe(3);
    for (const o of open.slice(1)) await o.c.send(encodeError(0, 'test done'), o.tid);
  }, 30_000);

  it('does not acknowledge a timeout above the cap: one request cannot hold a session for 25 minutes', async () => {
    const { server } = await serve({ maxTimeoutS: 30 });
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet', [['timeout', '255'], ['tsize', '0']]), server.port);
    const oack = await c.next();
    if (oack?.packet.op !== 'OACK') throw new Error('expected OACK');
    expect(optsOf(oack.packet.options)).toEqual({ tsize: String(20 * 512 + 5) });
    await c.send(encodeError(0, 'test done'), oack.rinfo.port);
    const c2 = await client();
    await c2.send(encodeRequest('RRQ', 'small.bin', 'octet', [['timeout', '30']]), server.port);
    const ok = await c2.next();
    expect(ok?.packet.op === 'OACK' && optsOf(ok.packet.options)).toEqual({ timeout: '30' });
    await c2.send(encodeError(0, 'test done'), ok!.rinfo.port);
  }, 30_000);

  it('close() ends live sessions and frees their sockets', async () => {
    const { server, waitEvent } = await serve();
    const c = await client();
    await c.send(encodeRequest('RRQ', 'small.bin', 'octet'), server.port);
    expect((await c.next())?.packet.op).toBe('DATA');
    expect(server.stats.active).toBe(1);
    await server.close();
    expect((await waitEvent(() => true)).outcome).toBe('closed');
    expect(server.stats.active).toBe(0);
  }, 30_000);
});
