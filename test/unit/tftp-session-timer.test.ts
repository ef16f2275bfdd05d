import { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { decodePacket, encodeAck } from '../../server/tftp/packet.js';
import { ReadSession, type SessionEnd } from '../../server/tftp/session.js';
import { bufferSource } from '../../server/tftp/source.js';

/** A socket stand-in: records what the session sends, lets the test inject ACKs. */
class FakeSocket extends EventEmitter {
  sent: Array<{ at: number; op: string; block?: number }> = [];
  closed = false;
  send(buf: Buffer, cb?: () => void): void {
    const r = decodePacket(buf);
    if (r.ok) this.sent.push({ at: performance.now(), op: r.packet.op, ...(r.packet.op === 'DATA' ? { block: r.packet.block } : {}) });
    cb?.();
  }
  getSendQueueCount(): number { return 0; }
  close(): void { this.closed = true; }
  ack(n: number): void { this.emit('message', encodeAck(n)); }
}

function session(size: number, timeoutMs: number, retries: number) {
  const sock = new FakeSocket();
  let end: SessionEnd | null = null;
  const s = new ReadSession({
    socket: sock as unknown as Socket,
    source: bufferSource(Buffer.alloc(size, 7)),
    negotiated: { blksize: 512, windowsize: 1, timeoutMs, tsize: null, oack: [], ignored: [] },
    retries,
    logger: pino({ level: 'silent' }),
    decode: (m) => { const r = decodePacket(m); return r.ok ? r.packet : null; },
    onEnd: (e) => { end = e; },
  });
  return { sock, s, end: () => end };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('retransmit clock (one ticker, no re-arm per ACK)', () => {
  it('resends after the timeout, never before, and gives up after `retries`', async () => {
    const { sock, s, end } = session(3 * 512 + 1, 80, 2);
    s.start();
    for (let i = 0; i < 100 && !end(); i++) await sleep(20);
    const data = sock.sent.filter((p) => p.op === 'DATA');
    expect(data.map((p) => p.block)).toEqual([1, 1, 1]);
    for (let i = 1; i < data.length; i++) {
      const gap = data[i]!.at - data[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(75);
      expect(gap).toBeLessThan(80 * 1.25 + 200); // one tick late at most, plus a loaded machine's slack
    }
    expect(end()?.outcome).toBe('timeout');
    expect(sock.sent.at(-1)?.op).toBe('ERROR');
    expect(sock.closed).toBe(true);
  });

  it('an ACK that makes progress restarts the clock; the transfer then completes', async () => {
    const { sock, s, end } = session(3 * 512 + 1, 120, 3);
    s.start();
    await sleep(60);
    sock.ack(1); // DATA 2 goes out now: no resend of it for a full interval
    const sentAt = sock.sent.at(-1)!.at;
    await sleep(90);
    expect(sock.sent.filter((p) => p.block === 2)).toHaveLength(1);
    await sleep(200);
    const twos = sock.sent.filter((p) => p.block === 2);
    expect(twos.length).toBeGreaterThanOrEqual(2);
    expect(twos[1]!.at - sentAt).toBeGreaterThanOrEqual(115);
    sock.ack(2);
    sock.ack(3);
    sock.ack(4);
    for (let i = 0; i < 50 && !end(); i++) await sleep(10);
    expect(end()?.outcome).toBe('ok');
    expect(end()?.bytes).toBe(3 * 512 + 1);
  });
});
