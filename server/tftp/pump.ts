/**
 * The TFTP data phase runs in native code (native/tftp-pump: tftp_pump.c, whose
 * header says why and which protocol rules it keeps, and pump_loop.c): one thread per server
 * sends the OACK and every DATA block, takes the ACKs and retransmits. This
 * module loads it and gives each transfer a handle and a promise-free end
 * callback; server.ts keeps everything before the data phase (RRQ, boot
 * decision, open, option negotiation) in TypeScript.
 */
import { loadAddon } from '../native-addon.js';
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
  private readonly ends = new Map<number, (end: PumpEnd) => void>();
  /** Why the server aborted a transfer, reported in its end instead of the pump's generic one. */
  private readonly abortReasons = new Map<number, string>();
  private closed = false;

  constructor() {
    this.native = load();
    this.handle = this.native.createPump((id, outcome, bytes, retransmits, malformed, reason) => {
      const cb = this.ends.get(id);
      if (!cb) return;
      this.ends.delete(id);
      const end: PumpEnd = { outcome: outcome as TransferOutcome, bytes, retransmits, malformed };
      const why = this.abortReasons.get(id);
      this.abortReasons.delete(id);
      if (why !== undefined && outcome === 'closed') end.reason = why;
      else if (reason !== undefined) end.reason = reason;
      cb(end);
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
    this.ends.set(r.id, onEnd);
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
    const pending = [...this.ends.entries()].map(([id, cb]) => new Promise<void>((resolve) => {
      this.ends.set(id, (end) => { cb(end); resolve(); });
    }));
    this.native.closePump(this.handle);
    await Promise.all(pending);
  }
}

/**
 * Several pump threads behind one DataPump interface: a storm of lock-step transfers is one
 * recv and one sendmsg per block each, and one thread is one CPU. A transfer goes to the
 * thread with the fewest in flight and stays there; ids are the pool's own.
 */
export class DataPumps {
  private readonly pumps: DataPump[];
  private readonly where = new Map<number, { pump: DataPump; id: number }>();
  private ids = 1;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a whole number >= 1, got ${threads}`);
    this.pumps = Array.from({ length: threads }, () => new DataPump());
  }

  get threads(): number {
    return this.pumps.length;
  }

  /** Transfers in flight, over every thread. */
  get active(): number {
    return this.where.size;
  }

  /** Transfers in flight per thread (for tests and the bench). */
  perThread(): number[] {
    return this.pumps.map((p) => p.active);
  }

  start(t: PumpTransfer, onEnd: (end: PumpEnd) => void): { id: number; port: number } {
    let pump = this.pumps[0]!;
    for (const p of this.pumps) if (p.active < pump.active) pump = p;
    const id = this.ids++;
    const r = pump.start(t, (end) => {
      this.where.delete(id);
      onEnd(end);
    });
    this.where.set(id, { pump, id: r.id });
    return { id, port: r.port };
  }

  abort(id: number, reason: string): void {
    const w = this.where.get(id);
    if (w) w.pump.abort(w.id, reason);
  }

  async close(): Promise<void> {
    await Promise.all(this.pumps.map((p) => p.close()));
  }
}
