/**
 * Fixtures for the TFTP tests: a temp root with random files, hashing, a
 * log sink that keeps pino lines, and a raw UDP client that counts packets
 * (the real clients cannot tell us how many DATA packets they received).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { decodePacket, type Packet } from '../../server/tftp/packet.js';

export async function makeTempRoot(prefix = 'sidereal-tftp-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Random content, written in 1 MiB pieces so a 40 MiB file does not need 40 MiB of JS strings. */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1 << 20);
    const b = randomBytes(n);
    hash.update(b);
    parts.push(b);
    left -= n;
  }
  await writeFile(file, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  return hash.digest('hex');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

/** A pino logger at `level` whose JSON lines are kept in `lines` (parsed). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level, base: { svc: 'tftp' } }, sink), lines };
}

/** `at`: performance.now() when the datagram arrived. */
export interface Received { packet: Packet; rinfo: RemoteInfo; at: number }

/** A UDP client that queues every decoded datagram, for hand-driven protocol tests. */
export class RawClient {
  readonly socket: Socket;
  private queue: Received[] = [];
  private waiters: Array<(r: Received) => void> = [];
  /** Every DATA seen, by wire block number. */
  readonly dataCount = new Map<number, number>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg: Buffer, rinfo) => {
      const d = decodePacket(msg);
      if (!d.ok) return;
      if (d.packet.op === 'DATA') this.dataCount.set(d.packet.block, (this.dataCount.get(d.packet.block) ?? 0) + 1);
      const r = { packet: d.packet, rinfo, at: performance.now() };
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
  }

  static async open(address = '127.0.0.1'): Promise<RawClient> {
    const s = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
    return new RawClient(s);
  }

  send(buf: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(buf, port, address, (err) => (err ? reject(err) : resolve())));
  }

  /** Next packet, or null after `ms` (a generous bound, not a timing assertion). */
  next(ms = 10_000): Promise<Received | null> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(null);
      }, ms);
      const done = (r: Received) => { clearTimeout(t); resolve(r); };
      this.waiters.push(done);
    });
  }

  /** Drain what arrives within `ms` (used to count stray packets after a transfer). */
  async drain(ms: number): Promise<Received[]> {
    const out: Received[] = [];
    for (;;) {
      const r = await this.next(ms);
      if (!r) return out;
      out.push(r);
    }
  }

  close(): void {
    this.socket.close();
  }
}
