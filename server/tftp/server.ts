/**
 * The TFTP listener: takes RRQs on the well-known port, asks the boot
 * decision (`resolve`) what the path means, negotiates the options and hands
 * the data phase to the native pump (pump.ts), which sends from a fresh
 * socket (the server TID, RFC 1350 section 4).
 *
 * The server never knows about machines or the inventory: `resolve` turns a
 * path into a ServedFile (a checked static path, a rendered Buffer, or a
 * reason it is missing), as pixiecore's Booter does.
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ServedFile } from '../boot/types.js';
import { isRefusal } from './files.js';
import { negotiate, resolveLimits } from './options.js';
import { decodePacket, encodeError, encodeOack, ErrorCode, type OptionList, type Packet } from './packet.js';
import { DataPumps, type PumpEnd } from './pump.js';
import { openBootFile, type OpenFile } from './source.js';
import type { TransferEvent, TransferOutcome } from './types.js';

export type { TransferEvent, TransferOutcome } from './types.js';

export interface Peer { address: string; port: number }

export interface TftpServerOptions {
  /** Address to bind: a namespace or lab address, 127.0.0.1 in tests. Never a wildcard by default. */
  address: string;
  /** 69 in production; 0 picks a free port (tests). */
  port: number;
  resolve(path: string, peer: Peer): Promise<ServedFile> | ServedFile;
  /** Pass `logger.child({ svc: 'tftp' })`. */
  logger: Logger;
  /** Cap on blksize; default: MTU of the interface holding `address` minus 32. */
  maxBlksize?: number;
  /** Cap on windowsize (RFC 7440); default 64. */
  maxWindowsize?: number;
  /** Cap on a window's estimated footprint in the client's receive buffer; default 128 KiB (options.ts DEFAULT_MAX_WINDOW_BYTES). */
  maxWindowBytes?: number;
  /** Retransmissions without progress before a session gives up; default 5. */
  retries?: number;
  /** Retransmit interval when the client does not negotiate `timeout`; default 1000 ms. */
  timeoutMs?: number;
  /** Concurrent transfers; beyond it an RRQ is answered with ERROR 0 "server busy". Default 1024. */
  maxSessions?: number;
  /**
   * Concurrent transfers from one client address (started or being set up); beyond it an RRQ
   * is answered "server busy". Default 8: a booting node reads one file at a time, so more
   * is a broken client or a flood, and must not take the whole session table.
   */
  maxSessionsPerClient?: number;
  /** Largest `timeout` option acknowledged, seconds (default 30, options.ts DEFAULT_MAX_TIMEOUT_S). */
  maxTimeoutS?: number;
  /** Native pump threads the transfers are spread over; default 1. */
  threads?: number;
  onTransfer?(ev: TransferEvent): void;
}

export interface TftpStats {
  requests: number;
  active: number;
  ok: number;
  failed: number;
  abortedProbes: number;
  notFound: number;
  refused: number;
  rejected: number;
  malformed: number;
  bytesSent: number;
  retransmits: number;
}

export interface TftpServer {
  readonly address: string;
  readonly port: number;
  readonly stats: TftpStats;
  /**
   * Stop taking requests at once; let the transfers in flight finish for up
   * to `graceMs` (default 0), then end the rest with ERROR 0.
   */
  close(graceMs?: number): Promise<void>;
}

/** Generous kernel buffers: a window of DATA must fit without EAGAIN and a burst of RRQs must not be dropped. */
const SESSION_SNDBUF = 2 * 1024 * 1024;
const SESSION_RCVBUF = 256 * 1024;
const LISTEN_RCVBUF = 4 * 1024 * 1024;

function bindSocket(sock: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    sock.once('error', onError);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

const LEVEL: Record<TransferOutcome, 'info' | 'warn' | 'debug'> = {
  ok: 'info',
  'aborted-probe': 'debug', // every UEFI boot does it once: not news
  'not-found': 'info',
  refused: 'warn',
  rejected: 'warn',
  timeout: 'warn',
  'client-error': 'warn',
  'peer-unreachable': 'warn',
  error: 'warn',
  closed: 'info',
};

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const log = opts.logger;
  const limits = resolveLimits(opts.address, opts);
  const retries = opts.retries ?? 5;
  const defaultTimeoutMs = opts.timeoutMs ?? 1000;
  const maxSessions = opts.maxSessions ?? 1024;
  const maxPerClient = opts.maxSessionsPerClient ?? 8;
  /** Requests in setup or transfer, by client address. */
  const perClient = new Map<string, number>();
  const stats: TftpStats = {
    requests: 0, active: 0, ok: 0, failed: 0, abortedProbes: 0, notFound: 0, refused: 0,
    rejected: 0, malformed: 0, bytesSent: 0, retransmits: 0,
  };
  /** By client TID: the request signature (to drop retransmitted RRQs) and its pump session id once started. */
  const byPeer = new Map<string, { sig: string; session: number | null; cancelled: boolean }>();
  /** Requests between RRQ and session start (resolve, open, bind): close() waits for them. */
  const setups = new Set<Promise<void>>();
  let closing = false;

  const listener = createSocket({ type: 'udp4', recvBufferSize: LISTEN_RCVBUF });
  await bindSocket(listener, opts.address, opts.port);
  const port = listener.address().port;
  const pump = new DataPumps(opts.threads ?? 1);
  // Derived, never stored: the pump's count of transfers in flight.
  Object.defineProperty(stats, 'active', { get: () => pump.active, enumerable: true });
  log.info({ address: opts.address, port, maxBlksize: limits.maxBlksize, maxWindowsize: limits.maxWindowsize }, 'tftp listening');

  const decode = (msg: Buffer, peer: string): Packet | null => {
    const r = decodePacket(msg);
    if (r.ok) return r.packet;
    stats.malformed++;
    log.debug({ peer, problem: r.error.problem, detail: r.error.detail, len: msg.length }, 'malformed TFTP packet dropped');
    return null;
  };

  const emit = (ev: TransferEvent): void => {
    switch (ev.outcome) {
      case 'ok': stats.ok++; break;
      case 'aborted-probe': stats.abortedProbes++; break;
      case 'not-found': stats.notFound++; break;
      case 'refused': stats.refused++; break;
      case 'rejected': stats.rejected++; break;
      default: stats.failed++;
    }
    log[LEVEL[ev.outcome]](ev, `tftp ${ev.outcome}`);
    try {
      opts.onTransfer?.(ev);
    } catch (err) {
      log.error({ err }, 'onTransfer hook threw');
    }
  };

  /** Errors for a request go out from the listening port: the client has no TID for us yet and takes the first reply's port. */
  const replyError = (peer: Peer, code: number, message: string): void => {
    listener.send(encodeError(code, message), peer.port, peer.address, (err) => {
      if (err) log.debug({ err: err.message }, 'could not send ERROR');
    });
  };

  const refuse = (peer: Peer, file: string, t0: number, outcome: TransferOutcome, reason: string, code: number, message: string): void => {
    replyError(peer, code, message);
    emit({
      peer: `${peer.address}:${peer.port}`, file, bytes: 0, blksize: 0, windowsize: 0, tsize: null,
      ms: Math.round(performance.now() - t0), outcome, reason,
    });
  };

  async function handleRead(peer: Peer, filename: string, options: OptionList, key: string, t0: number): Promise<void> {
    const entry = byPeer.get(key)!;
    perClient.set(peer.address, (perClient.get(peer.address) ?? 0) + 1);
    let released = false;
    const done = () => {
      if (byPeer.get(key) === entry) byPeer.delete(key);
      if (released) return;
      released = true;
      const n = (perClient.get(peer.address) ?? 1) - 1;
      if (n > 0) perClient.set(peer.address, n);
      else perClient.delete(peer.address);
    };
    let served: ServedFile;
    try {
      served = await opts.resolve(filename, peer);
    } catch (err) {
      done();
      refuse(peer, filename, t0, 'error', `resolver threw: ${(err as Error).message}`, ErrorCode.NOT_DEFINED, 'internal error');
      return;
    }
    if (closing || entry.cancelled) { done(); return; }
    if (served.kind === 'missing') {
      done();
      refuse(peer, filename, t0, isRefusal(served.reason) ? 'refused' : 'not-found', served.reason, ErrorCode.FILE_NOT_FOUND, 'File not found');
      return;
    }
    let file: OpenFile | null = null;
    try {
      if (served.kind !== 'virtual') file = await openBootFile(served.path);
    } catch (err) {
      done();
      const code = (err as NodeJS.ErrnoException).code;
      const reason = `open failed: ${code ?? (err as Error).message}`;
      if (code === 'EACCES' || code === 'EPERM') refuse(peer, filename, t0, 'refused', reason, ErrorCode.ACCESS_VIOLATION, 'Access violation');
      else if (code === 'ELOOP' || code === 'EISDIR') refuse(peer, filename, t0, 'refused', reason, ErrorCode.FILE_NOT_FOUND, 'File not found');
      else refuse(peer, filename, t0, 'not-found', reason, ErrorCode.FILE_NOT_FOUND, 'File not found');
      return;
    }
    try {
      if (closing || entry.cancelled) { done(); return; }
      const mac = served.mac;
      const size = file ? file.size : (served as { content: Buffer }).content.length;
      const neg = negotiate(options, limits, { fileSize: size, defaultTimeoutMs });
      if (neg.ignored.length) log.debug({ peer: key, file: filename, ignored: neg.ignored }, 'tftp options not acknowledged');
      const onEnd = (end: PumpEnd) => {
        done();
        stats.bytesSent += end.bytes;
        stats.retransmits += end.retransmits;
        stats.malformed += end.malformed;
        const ev: TransferEvent = {
          peer: key, file: filename, bytes: end.bytes, blksize: neg.blksize, windowsize: neg.windowsize,
          tsize: neg.tsize, ms: Math.round(performance.now() - t0), outcome: end.outcome,
        };
        if (mac !== undefined) ev.mac = mac;
        if (end.reason !== undefined) ev.reason = end.reason;
        if (end.retransmits) ev.retransmits = end.retransmits;
        emit(ev);
      };
      try {
        const { id } = pump.start({
          source: file ? { fd: file.fd, size: file.size } : { data: (served as { content: Buffer }).content },
          local: opts.address,
          peer,
          blksize: neg.blksize,
          windowsize: neg.windowsize,
          timeoutMs: neg.timeoutMs,
          retries,
          oack: neg.oack.length > 0 ? encodeOack(neg.oack) : null,
          sndbuf: SESSION_SNDBUF,
          rcvbuf: SESSION_RCVBUF,
        }, onEnd);
        entry.session = id;
      } catch (err) {
        done();
        refuse(peer, filename, t0, 'error', `session socket: ${(err as Error).message}`, ErrorCode.NOT_DEFINED, 'internal error');
      }
    } finally {
      // The pump holds its own duplicate of the descriptor.
      await file?.close().catch(() => {});
    }
  }

  listener.on('message', (msg: Buffer, rinfo) => {
    if (closing) return;
    const peer: Peer = { address: rinfo.address, port: rinfo.port };
    const key = `${rinfo.address}:${rinfo.port}`;
    const p = decode(msg, key);
    if (!p) return;
    if (p.op !== 'RRQ' && p.op !== 'WRQ') {
      // DATA/ACK/ERROR belong on a session port; on 69 they are strays.
      log.debug({ peer: key, op: p.op }, 'non-request packet on the listening port dropped');
      return;
    }
    stats.requests++;
    const t0 = performance.now();
    if (p.op === 'WRQ') {
      refuse(peer, p.filename, t0, 'rejected', 'write request', ErrorCode.ACCESS_VIOLATION, 'write requests are not accepted');
      return;
    }
    // Boot files are binary; netascii would need translating every block
    // and breaks tsize and positioned reads. Firmware always asks octet.
    if (p.mode.toLowerCase() !== 'octet') {
      refuse(peer, p.filename, t0, 'rejected', `mode ${p.mode}`, ErrorCode.ILLEGAL_OPERATION, 'only octet mode is supported');
      return;
    }
    const sig = `${p.filename}\0${JSON.stringify(p.options)}`;
    const existing = byPeer.get(key);
    if (existing) {
      // The same RRQ again: our first reply was lost or slow; the session
      // retransmits on its own, a second session would double the traffic.
      if (existing.sig === sig) {
        log.debug({ peer: key, file: p.filename }, 'retransmitted RRQ ignored');
        return;
      }
      // Same TID, different request: the client moved on.
      existing.cancelled = true;
      if (existing.session !== null) pump.abort(existing.session, 'superseded by a new request from the same port');
      byPeer.delete(key);
    }
    if (pump.active >= maxSessions) {
      refuse(peer, p.filename, t0, 'error', `${pump.active} sessions active`, ErrorCode.NOT_DEFINED, 'server busy');
      return;
    }
    const fromClient = perClient.get(peer.address) ?? 0;
    if (fromClient >= maxPerClient) {
      refuse(peer, p.filename, t0, 'refused', `${fromClient} sessions already open from ${peer.address} (limit ${maxPerClient})`, ErrorCode.NOT_DEFINED, 'server busy');
      return;
    }
    byPeer.set(key, { sig, session: null, cancelled: false });
    const setup = handleRead(peer, p.filename, p.options, key, t0).catch((err: Error) => {
      log.error({ err, peer: key, file: p.filename }, 'tftp request handling failed');
    });
    setups.add(setup);
    void setup.finally(() => setups.delete(setup));
  });
  listener.on('error', (err) => log.error({ err }, 'tftp listening socket error'));

  return {
    address: opts.address,
    port,
    stats,
    async close(graceMs = 0) {
      if (closing) return;
      closing = true;
      for (const e of byPeer.values()) e.cancelled = true;
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      await Promise.all([...setups]);
      if (graceMs > 0 && pump.active > 0) {
        log.info({ active: pump.active, graceMs }, 'tftp stopping: letting the transfers in flight finish');
        const deadline = Date.now() + graceMs;
        while (pump.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      }
      if (pump.active > 0) log.warn({ active: pump.active }, 'tftp stopping: transfers still in flight are ended');
      await pump.close();
    },
  };
}
