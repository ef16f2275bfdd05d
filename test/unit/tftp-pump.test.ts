/**
 * The native pump (native/tftp-pump) seen from the client side of a real
 * loopback transfer: its retransmit clock (a resend comes after the
 * interval, never before; an ACK that makes progress restarts it; after
 * `retries` resends without progress the transfer ends with ERROR 0), a
 * file cut short under a transfer, transfers that end before the call
 * that started them returns, and several pump threads sharing the transfers.
 */
import { execa } from 'execa';
import { truncate } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveStatic } from '../../server/tftp/files.js';
import { encodeAck, encodeRequest } from '../../server/tftp/packet.js';
import { startTftpServer, type TftpServer, type TransferEvent } from '../../server/tftp/server.js';
import { DataPumps, type PumpEnd } from '../../server/tftp/pump.js';
import { silentLogger } from '../../server/log.js';
import { run } from '../../server/run.js';
import { captureLogger, makeTempRoot, RawClient, writeRandomFile } from '../helpers/tftp-fixtures.js';

const SIZE = 3 * 512 + 1; // blocks 1..4 at the default blksize
let root: { dir: string; cleanup(): Promise<void> };
const servers: TftpServer[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  root = await makeTempRoot();
  await writeRandomFile(path.join(root.dir, 'four-blocks.bin'), SIZE);
  await writeRandomFile(path.join(root.dir, 'shrinks.bin'), 4 << 20);
  await writeRandomFile(path.join(root.dir, 'empty.bin'), 0);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  await root?.cleanup();
});

async function setup(timeoutMs: number, retries: number, file = 'four-blocks.bin') {
  const events: TransferEvent[] = [];
  const server = await startTftpServer({
    address: '127.0.0.1', port: 0, logger: captureLogger('debug').logger,
    resolve: (p) => resolveStatic(root.dir, p), timeoutMs, retries,
    onTransfer: (ev) => events.push(ev),
  });
  servers.push(server);
  const c = await RawClient.open();
  clients.push(c);
  await c.send(encodeRequest('RRQ', file, 'octet'), server.port);
  const waitEnd = async () => {
    for (let i = 0; i < 200 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    return events[0];
  };
  return { server, c, waitEnd };
}

describe('retransmit clock', () => {
  it('resends after the timeout, never before, and gives up after `retries`', async () => {
    // Arrival times are stamped when this thread takes the packet: on a loaded machine one can
    // be late by tens of ms, which shortens the next gap. An interval of 300 ms leaves room for
    // that (up to 50 ms) and still tells a resend on time from one sent early.
    const { c, waitEnd } = await setup(300, 2);
    const got = await c.drain(1500);
    const data = got.filter((r) => r.packet.op === 'DATA');
    expect(data.map((r) => (r.packet.op === 'DATA' ? r.packet.block : -1))).toEqual([1, 1, 1]);
    for (let i = 1; i < data.length; i++) {
      const gap = data[i]!.at - data[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(250);
      expect(gap).toBeLessThan(300 + 300); // a loaded machine's slack
    }
    expect(got.at(-1)?.packet.op).toBe('ERROR');
    expect((await waitEnd())?.outcome).toBe('timeout');
  });

  it('an ACK that makes progress restarts the clock; the transfer then completes', async () => {
    const { c, waitEnd } = await setup(300, 3);
    const first = await c.next(2000);
    if (first?.packet.op !== 'DATA') throw new Error('expected DATA 1');
    const tid = first.rinfo.port;
    await new Promise((r) => setTimeout(r, 180));
    await c.send(encodeAck(1), tid); // DATA 2 goes out now: no resend of it for a full interval
    const two = await c.next(2000);
    expect(two?.packet.op === 'DATA' && two.packet.block).toBe(2);
    const again = await c.next(2000);
    expect(again?.packet.op === 'DATA' && again.packet.block).toBe(2);
    expect(again!.at - two!.at).toBeGreaterThanOrEqual(250);
    for (const b of [2, 3, 4]) {
      await c.send(encodeAck(b), tid);
      if (b < 4) await c.next(2000);
    }
    const end = await waitEnd();
    expect(end?.outcome).toBe('ok');
    expect(end?.bytes).toBe(SIZE);
    expect(end?.retransmits).toBe(1);
  });
});

describe('reading a session socket', () => {
  it('a burst longer than one read (recvmmsg takes 8 at a time) is read whole: junk counted, the ACKs behind it move the transfer', async () => {
    const { server, c, waitEnd } = await setup(2000, 2);
    const first = await c.next(2000);
    if (first?.packet.op !== 'DATA') throw new Error('expected DATA 1');
    const tid = first.rinfo.port;
    const junk = Buffer.from([0, 9, 9]);
    for (let i = 0; i < 20; i++) await c.send(junk, tid);
    for (const b of [1, 2, 3, 4]) {
      await c.send(encodeAck(b), tid);
      if (b < 4) {
        const d = await c.next(2000);
        expect(d?.packet.op === 'DATA' && d.packet.block).toBe(b + 1);
      }
    }
    const end = await waitEnd();
    expect(end?.outcome).toBe('ok');
    expect(end?.retransmits ?? 0).toBe(0);
    expect(server.stats.malformed).toBe(20);
  });
});

describe('a file that changes under a transfer', () => {
  it('ends with ERROR 0 and outcome error when the file is cut short, and names the block', async () => {
    const { c, waitEnd } = await setup(2000, 2, 'shrinks.bin');
    const first = await c.next(2000);
    if (first?.packet.op !== 'DATA') throw new Error('expected DATA 1');
    // The pump reads 128 KiB ahead: cut the file well before where it will read next.
    await truncate(path.join(root.dir, 'shrinks.bin'), 1 << 20);
    let last: Awaited<ReturnType<typeof c.next>> = first;
    for (let b = 1; b <= 4096 && last?.packet.op === 'DATA'; b++) {
      await c.send(encodeAck(b), first.rinfo.port);
      last = await c.next(2000);
    }
    expect(last?.packet.op).toBe('ERROR');
    const end = await waitEnd();
    expect(end?.outcome).toBe('error');
    expect(end?.reason).toMatch(/short read at block \d+/);
    expect(end?.bytes).toBeLessThanOrEqual(1 << 20);
  });
});

describe('a transfer that ends before startSession returns', () => {
  it('still reports its end to the server: 60 empty files to curl with both cores busy, then a prompt close', async () => {
    // The bug: startSession read the session's id after handing it to the pump thread, which
    // may already have run the whole transfer and freed it (an empty file is one OACK and one
    // DATA; the JS thread only has to be preempted). The end report then matched no transfer:
    // it was never logged, the per-client count never fell, and close() waited for ever.
    const events: TransferEvent[] = [];
    const server = await startTftpServer({
      address: '127.0.0.1', port: 0, logger: captureLogger('debug').logger,
      resolve: (p) => resolveStatic(root.dir, p), onTransfer: (ev) => events.push(ev),
    });
    servers.push(server);
    // Two CPU hogs for the preemption that opens the window, through the project's run(): each in
    // a process group of its own, stopped by the abort below, after 60 s at most, and when this
    // process exits. (SIGKILL to a `timeout` wrapper alone once orphaned its spinning shell.)
    const stop = new AbortController();
    const hogs = [0, 1].map(() => run(['sh', '-c', 'while :; do :; done'],
      { signal: stop.signal, timeoutMs: 60_000, killGraceMs: 500, logger: silentLogger() }).catch(() => { /* aborted: expected */ }));
    try {
      for (let i = 0; i < 60; i++) {
        const r = await execa('curl', ['-sS', '-o', '/dev/null', '--tftp-blksize', '1468', `tftp://127.0.0.1:${server.port}/empty.bin`], { reject: false });
        expect(r.exitCode, r.stderr).toBe(0);
      }
    } finally {
      stop.abort();
      await Promise.all(hogs);
    }
    for (let i = 0; i < 100 && events.length < 60; i++) await new Promise((r) => setTimeout(r, 20));
    expect(events.map((e) => e.outcome)).toEqual(Array(60).fill('ok'));
    expect(server.stats.active).toBe(0);
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  }, 120_000);
});

describe('several pump threads', () => {
  it('spread transfers to the least busy thread, keep ids apart, and end each on its own', async () => {
    const pumps = new DataPumps(2);
    const peers = await Promise.all([0, 1, 2, 3].map(() => RawClient.open()));
    clients.push(...peers);
    const ends: Array<{ id: number; end: PumpEnd }> = [];
    const started = peers.map((c, k) => pumps.start({
      source: { data: Buffer.alloc(3 * 512 + 1, k + 1) }, local: '127.0.0.1',
      peer: { address: '127.0.0.1', port: c.socket.address().port },
      blksize: 512, windowsize: 1, timeoutMs: 5000, retries: 5, oack: null, sndbuf: 0, rcvbuf: 0,
    }, (end) => ends.push({ id: started[k]!.id, end })));
    expect(pumps.perThread()).toEqual([2, 2]);
    expect(new Set(started.map((s) => s.id)).size).toBe(4);
    // Client 0 reads its file to the end: four lock-step blocks, each with its own content.
    for (let b = 1; b <= 4; b++) {
      const r = await peers[0]!.next(2000);
      expect(r?.packet).toMatchObject({ op: 'DATA', block: b });
      if (r?.packet.op === 'DATA') expect(r.packet.data[0]).toBe(1);
      await peers[0]!.send(encodeAck(b), r!.rinfo.port);
    }
    for (let i = 0; i < 100 && ends.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(ends).toEqual([{ id: started[0]!.id, end: expect.objectContaining({ outcome: 'ok', bytes: 3 * 512 + 1 }) }]);
    expect(pumps.active).toBe(3);
    // The pool's id reaches the right thread's transfer.
    pumps.abort(started[3]!.id, 'test abort');
    for (let i = 0; i < 100 && ends.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(ends[1]).toEqual({ id: started[3]!.id, end: expect.objectContaining({ outcome: 'closed', reason: 'test abort' }) });
    // One transfer left on each thread.
    expect(pumps.perThread()).toEqual([1, 1]);
    await pumps.close();
    expect(ends.map((e) => e.end.outcome).sort()).toEqual(['closed', 'closed', 'closed', 'ok']);
    expect(pumps.active).toBe(0);
  });
});
