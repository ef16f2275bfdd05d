/**
 * The TFTP data phase runs in native code (native/tftp-pump: tftp_pump.c, whose
 * header says why and which protocol rules it keeps, and pump_loop.c): one thread per server
 * sends the OACK and every DATA block, takes the ACKs and retransmits. This
 * module loads it and gives each transfer a handle and a promise-free end
 * callback; server.ts keeps everything before the data phase (RRQ, boot
 * decision, open, option negotiation) in TypeScript.
 */
import { loadAddon } from '../native-addon.js';
import { PendingEnds, ThreadPool } from '../native-pool.js';
import type { TransferOutcome } from './types.js';

/** How a transfer ended, as the pump reports it. */
export interface PumpEnd {
  outcome: TransferOutcome;
  /** Bytes acknowledged (the whole file when ok). */
  bytes: number;
  retransmits: number;
  /** Datagrams on the session port that were not TFTP. */
  malformed: number;
  reason?: string;
}

export interface PumpTransfer {
  /** Where the bytes come from: an open file (the pump dups the descriptor; close yours after start) or a rendered Buffer. */
  source: { fd: number; size: number } | { data: Buffer };
  local: string;
  peer: { address: string; port: number };
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /** The OACK to send first; null sends DATA 1 at once (nothing negotiated, RFC 2347). */
  oack: Buffer | null;
  sndbuf: number;
  rcvbuf: number;
}

interface Addon {
  createPump(onEnd: (id: number, outcome: string, bytes: number, retransmits: number, malformed: number, reason?: string) => void): unknown;
  startSession(pump: unknown, o: Record<string, unknown>): { id: number; port: number };
  abortSession(pump: unknown, id: number): void;
  closePump(pump: unknown): void;
}

function load(): Addon {
  return loadAddon<Addon>('tftp-pump', 'tftp_pump');
}

export class DataPump {
  private readonly native: Addon;
  private readonly handle: unknown;
  private readonly ends = new PendingEnds<PumpEnd>();
  /** Why the server aborted a transfer, reported in its end instead of the pump's generic one. */
  private readonly abortReasons = new Map<number, string>();
  private closed = false;

  constructor() {
    this.native = load();
    this.handle = this.native.createPump((id, outcome, bytes, retransmits, malformed, reason) => {
      if (!this.ends.has(id)) return;
      const end: PumpEnd = { outcome: outcome as TransferOutcome, bytes, retransmits, malformed };
      const why = this.abortReasons.get(id);
      this.abortReasons.delete(id);
      if (why !== undefined && outcome === 'closed') end.reason = why;
      else if (reason !== undefined) end.reason = reason;
      this.ends.deliver(id, end);
    });
  }

  /** Transfers in flight. */
  get active(): number {
    return this.ends.size;
  }

  /**
   * Make the session socket (bound to `local`, connected to the peer; throws
   * if that fails) and hand the transfer to the pump thread. `onEnd` is
   * called once, on this thread.
   */
  start(t: PumpTransfer, onEnd: (end: PumpEnd) => void): { id: number; port: number } {
    if (this.closed) throw new Error('the TFTP pump is closed');
    const src = 'data' in t.source
      ? { fd: -1, data: t.source.data, size: t.source.data.length }
      : { fd: t.source.fd, size: t.source.size };
    const r = this.native.startSession(this.handle, {
      ...src,
      local: t.local,
      peer: t.peer.address,
      peerPort: t.peer.port,
      blksize: t.blksize,
      windowsize: t.windowsize,
      timeoutMs: t.timeoutMs,
      retries: t.retries,
      oack: t.oack ?? undefined,
      sndbuf: t.sndbuf,
      rcvbuf: t.rcvbuf,
    });
    this.ends.add(r.id, onEnd);
    return r;
  }

  /** End a transfer with ERROR 0 "server shutting down"; its onEnd follows with outcome closed and `reason`. */
  abort(id: number, reason: string): void {
    if (this.closed || !this.ends.has(id)) return;
    this.abortReasons.set(id, reason);
    this.native.abortSession(this.handle, id);
  }

  /** End every transfer (outcome closed) and stop the thread; the end callbacks still arrive, resolved here. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ends.closeWith(() => this.native.closePump(this.handle));
  }
}

/**
 * Several pump threads behind one DataPump interface: a storm of lock-step transfers is one
 * recv and one sendmsg per block each, and one thread is one CPU (server/native-pool.ts).
 */
export class DataPumps extends ThreadPool<DataPump> {
  constructor(threads: number) {
    super(threads, () => new DataPump());
  }

  start(t: PumpTransfer, onEnd: (end: PumpEnd) => void): { id: number; port: number } {
    return this.place((pump, ended) => pump.start(t, (end) => { ended(); onEnd(end); }));
  }

  abort(id: number, reason: string): void {
    const w = this.find(id);
    if (w) w.thread.abort(w.id, reason);
  }
}
