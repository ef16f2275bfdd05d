/**
 * A boot file's bytes go out with sendfile(2) from a native thread
 * (native/http-sendfile: sendfile_pump.c, whose header says why): Node's HTTP
 * server writes the status line and headers, the pump sends the body
 * straight from the page cache to the socket, and the response is ended once
 * the pump reports the last byte in the socket, so keep-alive and the next
 * request go on as usual.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { loadAddon } from '../native-addon.js';
import { DEFAULT_HTTP_THREADS } from '../config/config.js';
import { PendingEnds, ThreadPool } from '../native-pool.js';

/** How a send ended: every byte handed to the kernel, or why not. */
export type SendOutcome = 'ok' | 'peer-closed' | 'stalled' | 'short' | 'error' | 'aborted' | 'closed';

export interface SendEnd {
  outcome: SendOutcome;
  /** Bytes handed to the socket. */
  bytes: number;
  reason?: string;
}

interface Addon {
  createPump(onEnd: (id: number, outcome: string, bytes: number, reason?: string) => void): unknown;
  startSend(pump: unknown, socketFd: number, fileFd: number, offset: number, length: number, stallMs: number): number;
  abortSend(pump: unknown, id: number): void;
  closePump(pump: unknown): void;
}

/**
 * A client that takes no byte for this long is dropped: iPXE and UEFI read
 * as fast as they can, so a minute without progress is a node that went
 * away without closing (powered off mid-download).
 */
export const STALL_MS = 60_000;

const EMPTY = Buffer.alloc(0);

/** The descriptor under a plain TCP socket; undefined for anything else (app.inject's fake, TLS). */
export function socketFd(socket: Socket | null | undefined): number | undefined {
  // Never under TLS: bytes sent past it would go out in the clear, into the TLS stream.
  if ((socket as { encrypted?: boolean } | null | undefined)?.encrypted) return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } } | null | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** One native pump thread and its sends, by the thread's own ids. */
class SendfileThread {
  private readonly handle: unknown;
  private readonly ends = new PendingEnds<SendEnd>();

  constructor(private readonly native: Addon) {
    this.handle = native.createPump((id, outcome, bytes, reason) => {
      this.ends.deliver(id, reason === undefined ? { outcome: outcome as SendOutcome, bytes } : { outcome: outcome as SendOutcome, bytes, reason });
    });
  }

  get active(): number {
    return this.ends.size;
  }

  start(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, onEnd: (end: SendEnd) => void): { id: number } {
    const id = this.native.startSend(this.handle, socketFd, fileFd, offset, length, stallMs);
    this.ends.add(id, onEnd);
    return { id };
  }

  abort(id: number): void {
    if (this.ends.has(id)) this.native.abortSend(this.handle, id);
  }

  close(): Promise<void> {
    return this.ends.closeWith(() => this.native.closePump(this.handle));
  }
}

/**
 * `threads` pump threads (server/native-pool.ts): with 100 clients on 2 cores one thread left a
 * core idle (bench/http.ts).
 */
export class SendfilePump extends ThreadPool<SendfileThread> {
  private closed = false;

  constructor(threads = DEFAULT_HTTP_THREADS) {
    const native = loadAddon<Addon>('http-sendfile', 'http_sendfile');
    super(threads, () => new SendfileThread(native));
  }

  /** Send `length` bytes of `fileFd` from `offset` to `socketFd` (both dup'ed: close your file when this returns). */
  start(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, onEnd: (end: SendEnd) => void): number {
    if (this.closed) throw new Error('the sendfile pump is closed');
    return this.place((t, ended) => t.start(socketFd, fileFd, offset, length, stallMs, (end) => { ended(); onEnd(end); })).id;
  }

  abort(id: number): void {
    const w = this.find(id);
    if (!this.closed && w) w.thread.abort(w.id);
  }

  /** End every send (outcome closed) and stop the threads; resolves once their ends are delivered. */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await super.close();
  }
}

/** Whether `res` can take its body from the pump: a real TCP socket, and `res` is the response it is writing now. */
function canSendfile(res: ServerResponse): boolean {
  const socket = res.socket;
  if (!socket || socket.destroyed || socketFd(socket) === undefined) return false;
  return (socket as unknown as { _httpMessage?: unknown })._httpMessage === res;
}

/**
 * Resolves true once `res` may send its body through the pump. A response to
 * a request that came while the one before was still sending (iPXE asks for
 * the initrd as the kernel's last byte arrives, before the pump's end reaches
 * JS) has no socket yet: Node gives it the socket when the one before ends,
 * and its headers must go first. False when the connection closes first, or
 * has no descriptor (app.inject, TLS): send another way.
 */
export function sendfileTurn(res: ServerResponse, connection: Socket): Promise<boolean> {
  if (res.socket) return Promise.resolve(canSendfile(res));
  if (connection.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onSocket = () => { connection.off('close', onClose); resolve(canSendfile(res)); };
    const onClose = () => { res.off('socket', onSocket); resolve(false); };
    res.once('socket', onSocket);
    connection.once('close', onClose);
  });
}

/**
 * Write `res`'s status and headers (already set on it), then its body:
 * `length` bytes of `fileFd` from `offset`, through the pump. Keep `fileFd`
 * open until this resolves (the pump dups it once the headers are out).
 * Resolves with how the body ended; on anything but ok the connection is
 * destroyed (the client sees a short body against its Content-Length), on ok
 * the response is ended for keep-alive.
 */
export function sendfileResponse(pump: SendfilePump, res: ServerResponse, fileFd: number, offset: number, length: number, stallMs = STALL_MS): Promise<SendEnd> {
  const socket = res.socket!;
  res.flushHeaders();
  return new Promise<SendEnd>((resolve) => {
    let id: number | undefined;
    const onClose = () => { if (id !== undefined) pump.abort(id); };
    const ended = (end: SendEnd) => {
      socket.off('close', onClose);
      if (end.outcome !== 'ok') {
        res.destroy();
      } else {
        // The client may have its last byte before this end reaches JS, and ask again or go
        // idle: if the server began closing meanwhile, it passed this connection over as busy;
        // close it once ended, or it lingers until the client's keep-alive runs out.
        const server = (socket as Socket & { server?: { listening: boolean } }).server;
        if (server && !server.listening) res.once('finish', () => socket.end());
        res.end();
      }
      resolve(end);
    };
    // The empty write's callback runs once everything Node queued before it (the
    // headers) is in the kernel: the body must not overtake them.
    const afterHeaders = (err?: Error | null) => {
      const fd = socketFd(socket);
      if (err || socket.destroyed || fd === undefined) {
        res.destroy();
        resolve({ outcome: 'peer-closed', bytes: 0, reason: err ? `writing the headers: ${err.message}` : 'closed before the body' });
        return;
      }
      try {
        id = pump.start(fd, fileFd, offset, length, stallMs, ended);
      } catch (e) {
        res.destroy();
        resolve({ outcome: 'error', bytes: 0, reason: (e as Error).message });
        return;
      }
      socket.on('close', onClose);
    };
    socket.write(EMPTY, afterHeaders);
  });
}
