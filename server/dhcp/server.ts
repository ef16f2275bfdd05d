/**
 * The socket shell around the pure handler: receive, decode, handle, encode,
 * send, and one log line per message. Nothing a client sends can crash it:
 * every datagram is handled inside try/catch.
 */
import dgram from 'node:dgram';
import { DhcpHandler } from './handler.js';
import { loadAddon } from '../native-addon.js';
import { ZERO } from '../net/ipv4.js';
import type { DhcpServerOptions } from './options-config.js';
import { decodePacket, DhcpDecodeError, encodePacket } from './packet.js';
import { macOf } from './options.js';
import { RateLimiter } from './rate-limit.js';

export type { DhcpServerOptions } from './options-config.js';

export interface DhcpStats {
  received: number;
  replied: number;
  dropped: number;
  /** Dropped (and counted in `dropped`) because their MAC sent too many (maxPacketsPerMac). */
  rateLimited: number;
  malformed: number;
  errors: number;
}

export interface DhcpServer {
  close(): Promise<void>;
  readonly stats: DhcpStats;
  readonly handler: DhcpHandler;
  address(): { address: string; port: number };
}

const RECV_BUFFER = 4 << 20;

/**
 * A UDP socket bound to one interface (SO_BINDTODEVICE): Node's dgram cannot
 * tell which interface a broadcast came in on, so without this a server on
 * 0.0.0.0:67 answers every attached network.
 */
export function boundSocketFd(ifname: string, address: string, port: number): number {
  return loadAddon<{ openBoundUdpSocket(ifname: string, address: string, port: number): number }>('bindtodevice', 'bindtodevice')
    .openBoundUdpSocket(ifname, address, port);
}

/**
 * Start the server. With `opts.interface` the socket is bound to that device
 * and broadcasts to 255.255.255.255 leave through it. Without it the kernel
 * routes limited broadcasts by the routing table: they fail (ENETUNREACH,
 * logged) with no default route, and leave through the default route's
 * interface otherwise, so production setups should always give `interface`.
 */
export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const log = opts.logger.child({ svc: 'dhcp' });
  const handler = new DhcpHandler(opts);
  const metrics = opts.metrics;
  const stats: DhcpStats = { received: 0, replied: 0, dropped: 0, rateLimited: 0, malformed: 0, errors: 0 };
  const perMacLimit = opts.maxPacketsPerMac ?? 10;
  const perMac = perMacLimit > 0 ? new RateLimiter(perMacLimit) : null;
  const ignored = new Set(opts.ignoreMacs ?? []);
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    const done = () => {
      socket.off('error', onError);
      socket.setBroadcast(true);
      resolve();
    };
    if (opts.interface) {
      let fd: number;
      try { fd = boundSocketFd(opts.interface, opts.address, opts.port); } catch (err) { reject(err); return; }
      socket.bind({ fd }, done);
    } else {
      socket.bind({ address: opts.address, port: opts.port }, done);
    }
  });

  socket.on('error', (err) => {
    stats.errors++;
    log.error({ err }, 'dhcp socket error');
  });
  // A boot storm arrives in bursts: room for a few thousand requests (capped by net.core.rmem_max).
  try { socket.setRecvBufferSize(RECV_BUFFER); socket.setSendBufferSize(RECV_BUFFER); } catch { /* the kernel's default */ }

  const send = (bytes: Buffer, to: { address: string; port: number }, fields: Record<string, unknown>) => {
    socket.send(bytes, to.port, to.address, (err) => {
      if (err) {
        stats.errors++;
        log.warn({ ...fields, to: `${to.address}:${to.port}`, error: err.message }, 'dhcp send failed');
      }
    });
  };

  // Group commit: the leases of every ACK handled in one event-loop turn are
  // written in one transaction (one fsync), then those ACKs are sent. An ACK
  // is never sent for a lease that is not stored yet.
  const backend = opts.backend;
  const deferLeaseWrites = typeof backend.flush === 'function' && typeof backend.leases.stage === 'function';
  let held: Array<{ bytes: Buffer; to: { address: string; port: number }; fields: Record<string, unknown> }> = [];
  let flushScheduled = false;
  /** Batches handed to the backend and not settled yet (close() waits for them). */
  const writing = new Set<Promise<void>>();
  const withhold = (out: typeof held, err: unknown) => {
    if (out.length === 0) return;
    stats.errors += out.length;
    stats.replied -= out.length;
    log.error({ err, withheld: out.length }, 'dhcp lease write failed: ACKs not sent');
  };
  const flush = () => {
    flushScheduled = false;
    const out = held;
    held = [];
    let done: void | Promise<void>;
    try {
      done = backend.flush?.();
    } catch (err) {
      withhold(out, err);
      return;
    }
    if (!done) {
      for (const h of out) send(h.bytes, h.to, h.fields);
      return;
    }
    const p: Promise<void> = done.then(
      () => { for (const h of out) send(h.bytes, h.to, h.fields); },
      (err: unknown) => withhold(out, err),
    ).finally(() => writing.delete(p));
    writing.add(p);
  };
  const scheduleFlush = () => {
    if (flushScheduled || !backend.flush) return;
    flushScheduled = true;
    setImmediate(flush);
  };

  socket.on('message', (msg, rinfo) => {
    stats.received++;
    const peer = `${rinfo.address}:${rinfo.port}`;
    try {
      let req;
      try {
        req = decodePacket(msg);
      } catch (err) {
        stats.malformed++;
        const field = err instanceof DhcpDecodeError ? err.field : undefined;
        log.warn({ peer, bytes: msg.length, field, error: (err as Error).message, outcome: 'malformed' }, 'dhcp malformed packet');
        metrics?.malformed();
        return;
      }
      const now = Date.now();
      const mac = macOf(req);
      if (ignored.has(mac)) {
        stats.dropped++;
        return;
      }
      const rate = perMac?.take(mac, now) ?? 'pass';
      if (rate !== 'pass') {
        stats.dropped++;
        stats.rateLimited++;
        metrics?.message('rate-limited', 'dropped');
        // One line when a MAC starts being refused, not one per packet of a flood.
        if (rate === 'first-drop') log.warn({ mac, peer, limit: perMacLimit, outcome: 'rate-limited' }, 'dhcp client over its packet rate: dropping until it slows down');
        return;
      }
      const receivedOn = req.giaddr !== ZERO ? 'relay' : 'interface';
      const out = handler.handleDetailed(req, { receivedOn, now, deferLeaseWrites });
      scheduleFlush();
      const fields = { ...out.log, peer };
      metrics?.message(out.log.type, out.log.outcome);
      if (!out.result) {
        stats.dropped++;
        log[out.level](fields, 'dhcp');
        return;
      }
      const { reply, to } = out.result;
      const bytes = encodePacket(reply);
      if (out.result.afterFlush) held.push({ bytes, to, fields });
      else send(bytes, to, fields);
      stats.replied++;
      log[out.level]({ ...fields, to: `${to.address}:${to.port}` }, 'dhcp');
    } catch (err) {
      stats.errors++;
      log.error({ peer, bytes: msg.length, err }, 'dhcp handler error');
    }
  });

  const addr = socket.address();
  log.info({ address: addr.address, port: addr.port, interface: opts.interface ?? null, serverId: opts.serverId }, 'dhcp listening');

  let closed = false;
  return {
    stats,
    handler,
    address: () => ({ address: addr.address, port: addr.port }),
    close: () => new Promise<void>((resolve) => {
      if (closed) { resolve(); return; }
      closed = true;
      if (flushScheduled) flush();
      void Promise.allSettled([...writing])
        .then(() => backend.close?.())
        .catch((err: unknown) => log.warn({ err }, 'dhcp backend close failed'))
        .finally(() => socket.close(() => resolve()));
    }),
  };
}
