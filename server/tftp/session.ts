/**
 * One read transfer (RFC 1350) on its own UDP socket, whose port is the
 * server's transfer ID. The socket is connect()ed to the client, so the
 * kernel drops datagrams from any other TID and an ICMP port-unreachable
 * ends the session early.
 *
 * Sending is windowed (RFC 7440; windowsize 1 is plain RFC 1350 lock-step):
 * a whole window goes out without waiting, the ACK of block n moves the
 * window start to n+1. An ACK for a block before the end of what was sent
 * means the client saw a gap, so the window restarts at n+1 (RFC 7440
 * section 4). A timeout resends the window from the oldest unacknowledged
 * block, up to `retries` times without progress.
 *
 * Sorcerer's apprentice (RFC 1123 section 4.2.3.1): a duplicate ACK never
 * triggers a send, and ACKs older than the window are ignored, so echoes of
 * our own retransmissions cannot multiply traffic.
 *
 * Blocks are addressed by their absolute number (1..nBlocks); the wire
 * carries it modulo 65536, so files over 65535 blocks roll over to 0.
 */
import type { Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { ErrorCode, Opcode, encodeError, encodeOack, writeDataHeader, type Packet } from './packet.js';
import type { Negotiated } from './options.js';
import type { FileSource } from './source.js';
import type { TransferOutcome } from './types.js';

/** Bytes read from disk at once: big enough to amortise syscalls, small enough for hundreds of sessions. */
const CHUNK_BYTES = 128 * 1024;
/** preadv takes at most IOV_MAX (1024) buffers. */
const MAX_CHUNK_BLOCKS = 1024;
/** Fewest blocks per read, whatever the blksize (64 blocks of 8 KiB: 512 KiB). */
const MIN_CHUNK_BLOCKS = 64;

export interface SessionEnd {
  outcome: TransferOutcome;
  bytes: number;
  reason?: string;
  retransmits: number;
}

export interface SessionOptions {
  socket: Socket;
  source: FileSource;
  negotiated: Negotiated;
  /** Retransmissions without progress before giving up. */
  retries: number;
  logger: Logger;
  /** Decode with the server's accounting of malformed packets; null drops the datagram. */
  decode(msg: Buffer): Packet | null;
  onEnd(end: SessionEnd): void;
}

/** A run of consecutive blocks read in one preadv, each stored as a ready-to-send DATA packet. */
interface Chunk {
  index: number;
  buf: Buffer;
  /** One view per block (header + data), built when the read is issued: the ACK path allocates nothing. */
  pkts: Buffer[];
  /** Set once the read completed; `loading` stays as the shared promise. */
  ready: boolean;
  loading: Promise<Chunk>;
}

export class ReadSession {
  private readonly blksize: number;
  private readonly window: number;
  private readonly nBlocks: number;
  private readonly chunkBlocks: number;
  private readonly slot: number;
  private state: 'oack' | 'data' | 'done' = 'oack';
  /** Oldest unacknowledged block. */
  private base = 1;
  /** Next block to put on the wire. */
  private sendNext = 1;
  /** Highest block ever sent: ACKs beyond it are bogus. */
  private highestSent = 0;
  private tries = 0;
  private retransmits = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The chunk holding `sendNext` (saves a Map lookup per block). */
  private cur: Chunk | null = null;
  /** A read is in flight for the block pump() needs next; it re-pumps when the read lands. */
  private waitingForRead = false;
  private lastChunkAt = -1;
  private readonly chunks = new Map<number, Chunk>();
  private readonly free: Buffer[] = [];

  constructor(private readonly o: SessionOptions) {
    const n = o.negotiated;
    this.blksize = n.blksize;
    this.window = n.windowsize;
    // The last block is shorter than blksize, possibly empty: a file that is
    // an exact multiple of blksize ends with a 0-byte DATA (RFC 1350 section 6).
    this.nBlocks = Math.floor(o.source.size / this.blksize) + 1;
    this.slot = this.blksize + 4;
    // At least MIN_CHUNK_BLOCKS per read: with large blocks a 128 KiB chunk
    // is only 15 blocks, and the thread-pool round trip of each read showed
    // up per block in lock-step transfers.
    this.chunkBlocks = Math.max(1, Math.min(MAX_CHUNK_BLOCKS, Math.max(MIN_CHUNK_BLOCKS, Math.floor(CHUNK_BYTES / this.slot)), this.nBlocks));
    const onMsg = (msg: Buffer) => {
      // Fast path for the packet that arrives once per window: a well-formed
      // ACK needs no general decoding (and no allocation).
      if (msg.length === 4 && msg[0] === 0 && msg[1] === Opcode.ACK && this.state === 'data') {
        this.onAck((msg[2]! << 8) | msg[3]!);
        return;
      }
      const p = o.decode(msg);
      if (p) this.handle(p);
    };
    o.socket.on('message', onMsg);
    o.socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
  }

  /** Send the OACK, or DATA 1 when nothing was negotiated (RFC 2347). */
  start(): void {
    if (this.o.negotiated.oack.length > 0) {
      this.sendOack();
    } else {
      this.state = 'data';
      this.pump();
    }
  }

  /** Server shutdown. */
  abort(reason: string): void {
    this.finish('closed', reason, ErrorCode.NOT_DEFINED, 'server shutting down');
  }

  handle(p: Packet): void {
    if (this.state === 'done') return;
    if (p.op === 'ERROR') {
      // RFC 2347: ERROR 8 answers an OACK the client will not accept. UEFI
      // firmware does exactly that after reading tsize, then sends a new RRQ.
      if (this.state === 'oack' && p.code === ErrorCode.OPTION_NEGOTIATION) {
        this.finish('aborted-probe', `client aborted after OACK: ${p.message}`);
      } else {
        this.finish('client-error', `client sent ERROR ${p.code}: ${p.message}`);
      }
      return;
    }
    if (p.op !== 'ACK') {
      this.o.logger.debug({ op: p.op }, 'unexpected packet in a read transfer, dropped');
      return;
    }
    if (this.state === 'oack') {
      if (p.block !== 0) return; // an ACK of data we never sent
      this.state = 'data';
      this.tries = 0;
      this.pump();
      return;
    }
    this.onAck(p.block);
  }

  private onAck(wire: number): void {
    const last = this.base - 1;
    const diff = (wire - (last & 0xffff)) & 0xffff;
    // diff 0: a duplicate of the ACK that already moved the window. Doing
    // nothing here is what prevents the sorcerer's apprentice.
    if (diff === 0) return;
    // Older than the window (or beyond what we sent): stale, ignore.
    if (diff > this.highestSent - last) return;
    const acked = last + diff;
    this.base = acked + 1;
    this.tries = 0;
    if (this.base > this.nBlocks) {
      this.finish('ok');
      return;
    }
    // A gap (RFC 7440 section 4): restart the window after the acked block.
    if (acked < this.highestSent && this.sendNext > this.base) {
      this.retransmits += Math.min(this.highestSent, this.sendNext - 1) - acked;
      this.sendNext = this.base;
    }
    if (this.sendNext < this.base) this.sendNext = this.base;
    // Progress: restart the retransmit clock even if the window has nothing new to send.
    if (this.sendNext > this.windowEnd()) this.armTimer();
    this.pump();
  }

  private windowEnd(): number {
    return Math.min(this.base + this.window - 1, this.nBlocks);
  }

  /**
   * Put blocks sendNext..window end on the wire. Synchronous while the data
   * is in memory (the common case: no promise per ACK in lock-step); when a
   * chunk is still being read it stops and resumes when the read lands.
   */
  private pump(): void {
    if (this.waitingForRead || this.state !== 'data') return;
    let sent = 0;
    while (this.sendNext <= this.windowEnd()) {
      const b = this.sendNext;
      const idx = this.chunkIndex(b);
      let chunk = this.cur;
      if (chunk === null || chunk.index !== idx) {
        chunk = this.chunks.get(idx) ?? null;
        if (chunk !== null && chunk.ready) this.cur = chunk;
      }
      if (chunk === null || !chunk.ready) {
        this.waitingForRead = true;
        this.load(idx).then(
          () => { this.waitingForRead = false; this.pump(); },
          (err: Error) => this.finish('error', `read failed: ${err.message}`, ErrorCode.NOT_DEFINED, 'read error'),
        );
        break;
      }
      // No callback: a send error surfaces as the socket's 'error' event, and
      // buffer reuse is decided from the socket's send queue (evict below).
      this.o.socket.send(chunk.pkts[b - 1 - idx * this.chunkBlocks]!);
      this.sendNext = b + 1;
      if (b > this.highestSent) this.highestSent = b;
      sent++;
    }
    if (sent > 0) {
      this.armTimer();
      // Chunk bookkeeping only when the send point enters another chunk or
      // the next window's data is not in memory yet, not on every ACK.
      const at = this.chunkIndex(Math.min(this.sendNext, this.nBlocks));
      const ahead = Math.min(this.chunkIndex(this.nBlocks), Math.max(at + 1, this.chunkIndex(Math.min(this.windowEnd() + 1, this.nBlocks))));
      if (at !== this.lastChunkAt || !this.chunks.has(ahead)) {
        this.lastChunkAt = at;
        this.evictAndPrefetch();
      }
    }
  }

  private chunkIndex(block: number): number {
    return Math.floor((block - 1) / this.chunkBlocks);
  }

  private blockLen(block: number): number {
    return block < this.nBlocks ? this.blksize : this.o.source.size - (this.nBlocks - 1) * this.blksize;
  }

  /** Read chunk `idx` (shared promise if already loading). */
  private load(idx: number): Promise<Chunk> {
    const existing = this.chunks.get(idx);
    if (existing) return existing.loading;
    const first = idx * this.chunkBlocks + 1;
    const last = Math.min(first + this.chunkBlocks - 1, this.nBlocks);
    const need = (last - first + 1) * this.slot;
    const reuse = this.free.pop();
    const buf = reuse && reuse.length >= need ? reuse : Buffer.allocUnsafe(Math.max(need, Math.min(this.chunkBlocks, this.nBlocks) * this.slot));
    const pkts: Buffer[] = [];
    const chunk = { index: idx, buf, pkts, ready: false } as Chunk;
    const views: Buffer[] = [];
    let expected = 0;
    for (let b = first; b <= last; b++) {
      const off = (b - first) * this.slot;
      writeDataHeader(buf, off, b);
      const len = this.blockLen(b);
      if (len > 0) views.push(buf.subarray(off + 4, off + 4 + len));
      pkts.push(buf.subarray(off, off + 4 + len));
      expected += len;
    }
    chunk.loading = (async () => {
      const got = views.length ? await this.o.source.readv(views, (first - 1) * this.blksize) : 0;
      if (got !== expected) throw new Error(`short read at block ${first}: ${got} of ${expected} bytes (file changed?)`);
      chunk.ready = true;
      return chunk;
    })();
    this.chunks.set(idx, chunk);
    // Avoid an unhandled rejection when this was only a prefetch: the error
    // surfaces again when pump() waits on the same promise.
    chunk.loading.catch(() => {});
    return chunk.loading;
  }

  /** Drop chunks behind the send point (a go-back re-reads from the page cache) and read ahead one chunk. */
  private evictAndPrefetch(): void {
    const keepFrom = this.chunkIndex(Math.min(this.sendNext, this.nBlocks));
    for (const [idx, c] of this.chunks) {
      if (idx >= keepFrom || !c.ready) continue;
      this.chunks.delete(idx);
      if (this.cur === c) this.cur = null;
      // dgram.send does not copy: a datagram the kernel did not take at once
      // waits in libuv's queue still pointing into this buffer. Reuse it only
      // when that queue is empty, else let the GC have it.
      if (this.o.socket.getSendQueueCount() === 0) this.free.push(c.buf);
    }
    // Read ahead: the chunk after the send point, and whatever the next window needs.
    const next = Math.max(keepFrom + 1, this.chunkIndex(Math.min(this.windowEnd() + 1, this.nBlocks)));
    for (let i = keepFrom; i <= next && i <= this.chunkIndex(this.nBlocks); i++) {
      if (!this.chunks.has(i)) void this.load(i).catch(() => {});
    }
  }

  private sendOack(): void {
    this.o.socket.send(encodeOack(this.o.negotiated.oack), (err) => {
      if (err) this.onSocketError(err as NodeJS.ErrnoException);
    });
    this.armTimer();
  }

  /** One Timeout per session, refreshed (cheap) rather than re-created on every ACK. */
  private armTimer(): void {
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.onTimeout(), this.o.negotiated.timeoutMs);
  }

  private onTimeout(): void {
    if (this.state === 'done') return;
    this.tries++;
    if (this.tries > this.o.retries) {
      this.finish('timeout', `no ACK after ${this.o.retries} retransmissions (window at block ${this.base})`,
        ErrorCode.NOT_DEFINED, 'timed out');
      return;
    }
    if (this.state === 'oack') {
      this.sendOack();
      return;
    }
    this.retransmits += Math.max(0, Math.min(this.highestSent, this.windowEnd()) - this.base + 1);
    this.sendNext = this.base;
    this.pump();
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (this.state === 'done') return;
    if (err.code === 'ECONNREFUSED') this.finish('peer-unreachable', 'ICMP port unreachable from the client');
    else this.finish('error', `socket error: ${err.code ?? err.message}`);
  }

  private finish(outcome: TransferOutcome, reason?: string, errCode?: number, errMsg?: string): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.cur = null;
    const bytes = Math.min(this.o.source.size, Math.max(0, (this.base - 1) * this.blksize));
    const close = () => {
      try { this.o.socket.close(); } catch { /* already closed */ }
    };
    if (errCode !== undefined && errMsg !== undefined) {
      // Best effort: tell the client, then close once the datagram left.
      try { this.o.socket.send(encodeError(errCode, errMsg), close); } catch { close(); }
    } else {
      close();
    }
    this.chunks.clear();
    this.free.length = 0;
    this.o.source.close().catch(() => {});
    const end: SessionEnd = { outcome, bytes: outcome === 'ok' ? this.o.source.size : bytes, retransmits: this.retransmits };
    if (reason !== undefined) end.reason = reason;
    this.o.onEnd(end);
  }
}
