/**
 * The DHCP protocol logic (RFC 2131 4.3), with no sockets: a decoded request
 * in, a reply and its destination out, or nothing. Every call also yields
 * the fields of its one log line, replies and silent drops alike.
 */
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';
import type { DhcpHandlerOptions } from './options-config.js';
import { inSubnet, ZERO } from '../net/ipv4.js';
import { LeaseAllocator, type ServedSubnet } from './leases.js';
import {
  clientArchCode, getIp, getString, isIpxe, macOf, MessageType, messageType, messageTypeName, OPT, userClasses,
} from './options.js';
import type { DhcpPacket } from './packet.js';
import { buildReply, replyDestination, type ReplyConfig, type ReplyInput } from './reply.js';

export interface HandleContext {
  receivedOn: 'interface' | 'relay';
  now: number;
  /**
   * Stage the lease of an ACK instead of writing it (when the backend can):
   * the result then says `afterFlush` and the caller sends it only once
   * `backend.flush()` has returned. Absent: the lease is durable on return.
   */
  deferLeaseWrites?: boolean;
}

export interface DhcpLogFields {
  mac: string;
  xid: string;
  type: string;
  arch?: string;
  ip?: string;
  file?: string;
  outcome: string;
  reason?: string;
  giaddr?: string;
  archUnknown?: boolean;
}

export interface HandleResult {
  reply: DhcpPacket;
  to: { address: string; port: number };
  log: DhcpLogFields;
  /** The reply acknowledges a staged lease: send it only after backend.flush() returns. */
  afterFlush?: boolean;
}

export interface HandleOutcome {
  result: HandleResult | null;
  log: DhcpLogFields;
  level: 'debug' | 'info' | 'warn';
}

export class DhcpHandler {
  readonly allocator: LeaseAllocator;
  private readonly subnets: ServedSubnet[];
  private readonly replyCfg: ReplyConfig;

  constructor(private readonly opts: DhcpHandlerOptions) {
    this.allocator = new LeaseAllocator(opts.backend, opts.serverId, opts.offerTtlMs ?? 60_000, opts.maxPendingOffers ?? 4096);
    this.subnets = [
      { subnet: opts.subnet, router: opts.router, pool: opts.pool, registeredPool: opts.registeredPool },
      ...(opts.relays ?? []).map((r) => ({ subnet: r.subnet, router: r.router, pool: r.pool })),
    ];
    this.replyCfg = {
      serverId: opts.serverId, leaseTime: opts.leaseTime, dns: opts.dns, domain: opts.domain,
      clientPort: opts.clientPort ?? 68,
    };
  }

  /** The reply to send, or null when RFC 2131 says stay silent. */
  handle(request: DhcpPacket, ctx: HandleContext): HandleResult | null {
    return this.handleDetailed(request, ctx).result;
  }

  handleDetailed(req: DhcpPacket, ctx: HandleContext): HandleOutcome {
    this.opts.backend.beginPacket?.(ctx.deferLeaseWrites === true);
    const type = messageType(req);
    const mac = macOf(req);
    const base: DhcpLogFields = { mac, xid: `0x${req.xid.toString(16).padStart(8, '0')}`, type: messageTypeName(type), outcome: '' };
    if (req.giaddr !== ZERO) base.giaddr = req.giaddr;
    const drop = (outcome: string, level: HandleOutcome['level'], reason?: string): HandleOutcome => ({
      result: null, level, log: { ...base, outcome, ...(reason ? { reason } : {}) },
    });

    // Replies from other servers reach port 67 too; plain BOOTP (no option 53) is not served.
    if (req.op !== 1) return drop('ignored', 'debug', 'not a BOOTREQUEST');
    if (type === undefined) return drop('ignored', 'debug', 'BOOTP without option 53');

    const out = this.dispatch(req, type, mac, base, drop, ctx);
    this.opts.backend.clientSeen?.({
      mac, type: base.type,
      archCode: clientArchCode(req),
      vendorClass: getString(req, OPT.vendorClass),
      userClass: userClasses(req).join(',') || undefined,
      hostname: getString(req, OPT.hostname),
      ip: out.log.ip,
      bootFile: out.log.file,
    });
    return out;
  }

  private dispatch(
    req: DhcpPacket, type: number, mac: string, base: DhcpLogFields,
    drop: (o: string, l: HandleOutcome['level'], r?: string) => HandleOutcome, ctx: HandleContext,
  ): HandleOutcome {
    const sub = this.subnetFor(req);
    if (!sub) return drop('dropped', 'warn', `no subnet configured for relay ${req.giaddr}`);
    const reservation = this.opts.backend.reservation(mac);
    if (!reservation && this.opts.unknownClients === 'ignore' && !this.opts.backend.isRegistered?.(mac)) return drop('ignored', 'debug', 'unknown client, policy ignore');
    const now = ctx.now;
    const sid = getIp(req, OPT.serverId);
    const requested = getIp(req, OPT.requestedIp);

    switch (type) {
      case MessageType.DISCOVER: {
        const alloc = this.allocator.allocate(mac, sub, requested, now, reservation);
        if (alloc.ip === null) {
          return drop('no-offer', alloc.reason === 'pool-exhausted' || alloc.reason === 'offers-full' ? 'warn' : 'info', alloc.reason);
        }
        this.allocator.hold(mac, alloc.ip, now);
        return this.reply(req, base, 'offer', { type: MessageType.OFFER, ip: alloc.ip, sub, hostname: reservation?.hostname ?? null });
      }

      case MessageType.REQUEST: {
        if (sid !== undefined) {
          // SELECTING (4.3.2): the client chose another server; forget our offer and stay silent.
          if (sid !== this.opts.serverId) {
            this.allocator.dropOffer(mac);
            return drop('ignored', 'debug', `server-id ${sid} is another server`);
          }
          const want = requested ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
          if (!want) return this.nak(req, base, 'no requested address');
          return this.ackIfOurs(req, base, mac, want, sub, reservation, ctx, 'selecting');
        }
        if (requested) {
          // INIT-REBOOT (4.3.2): verify the remembered address.
          if (!inSubnet(requested, sub.subnet)) return this.nak(req, base, 'wrong subnet', requested);
          const alloc = this.allocator.allocate(mac, sub, requested, now, reservation);
          if (alloc.ip === requested) return this.ackIfOurs(req, base, mac, requested, sub, reservation, ctx, 'init-reboot');
          // "If the DHCP server has no record of this client, then it MUST remain silent."
          if (!this.allocator.hasRecord(mac)) return drop('ignored', 'info', `init-reboot for ${requested}, no record of client`);
          return this.nak(req, base, 'wrong address', requested);
        }
        if (req.ciaddr !== ZERO) {
          // RENEWING (unicast) or REBINDING (broadcast): ciaddr is the lease (4.3.2).
          if (!inSubnet(req.ciaddr, sub.subnet)) return this.nak(req, base, 'wrong subnet', req.ciaddr);
          return this.ackIfOurs(req, base, mac, req.ciaddr, sub, reservation, ctx, 'renew');
        }
        return drop('ignored', 'info', 'REQUEST with neither server-id, requested address nor ciaddr');
      }

      case MessageType.DECLINE: {
        if (sid !== undefined && sid !== this.opts.serverId) return drop('ignored', 'debug', `server-id ${sid} is another server`);
        if (!requested) return drop('ignored', 'info', 'DECLINE without requested address');
        // 4.3.3: the client found the address in use; keep it out of the pool for a while.
        const before = this.opts.backend.leases.byMac(mac);
        this.opts.backend.leases.decline(requested, mac, now + (this.opts.declineTime ?? 600) * 1000);
        this.allocator.dropOffer(mac);
        if (before && before.ipv4 !== requested) this.allocator.addressFreed(before.ipv4);
        return { result: null, level: 'warn', log: { ...base, ip: requested, outcome: 'declined' } };
      }

      case MessageType.RELEASE: {
        if (sid !== undefined && sid !== this.opts.serverId) return drop('ignored', 'debug', `server-id ${sid} is another server`);
        // 4.3.4: the release names the address in ciaddr; only release what the MAC holds.
        const lease = this.opts.backend.leases.byMac(mac);
        if (lease && lease.ipv4 === req.ciaddr) {
          this.opts.backend.leases.release(mac);
          this.allocator.addressFreed(lease.ipv4);
          return { result: null, level: 'info', log: { ...base, ip: req.ciaddr, outcome: 'released' } };
        }
        return drop('ignored', 'info', `no lease of ${req.ciaddr} for this client`);
      }

      case MessageType.INFORM:
        // 4.3.5: configuration only, no yiaddr and no lease time.
        return this.reply(req, base, 'inform-ack', { type: MessageType.ACK, inform: true, sub, hostname: reservation?.hostname ?? null });

      default:
        return drop('ignored', 'debug', `unsupported message type ${type}`);
    }
  }

  private ackIfOurs(
    req: DhcpPacket, base: DhcpLogFields, mac: string, want: string, sub: ServedSubnet,
    reservation: Reservation | undefined, ctx: HandleContext, state: string,
  ): HandleOutcome {
    const now = ctx.now;
    const alloc = this.allocator.allocate(mac, sub, want, now, reservation);
    if (alloc.ip !== want) {
      return this.nak(req, base, alloc.ip === null ? alloc.reason : `address is not ${want}'s to take (would be ${alloc.ip})`, want);
    }
    const hostname = reservation?.hostname ?? alloc.hostname ?? getString(req, OPT.hostname) ?? null;
    const deferred = this.allocator.commit(mac, want, hostname, this.opts.leaseTime, now, ctx.deferLeaseWrites);
    const out = this.reply(req, base, `ack-${state}`, { type: MessageType.ACK, ip: want, sub, hostname: reservation?.hostname ?? null });
    if (deferred && out.result) out.result.afterFlush = true;
    return out;
  }

  private nak(req: DhcpPacket, base: DhcpLogFields, reason: string, ip?: string): HandleOutcome {
    const reply = buildReply(req, { type: MessageType.NAK, message: reason }, this.replyCfg);
    const log = { ...base, outcome: 'nak', reason, ...(ip ? { ip } : {}) };
    return { result: { reply, to: replyDestination(req, true, this.replyCfg.clientPort), log }, level: 'info', log };
  }

  private reply(req: DhcpPacket, base: DhcpLogFields, outcome: string, input: ReplyInput): HandleOutcome {
    const boot = this.bootAnswer(req, macOf(req));
    const reply = buildReply(req, { ...input, boot }, this.replyCfg);
    const log: DhcpLogFields = { ...base, outcome, arch: boot.arch, file: boot.bootFile };
    if (input.ip) log.ip = input.ip;
    if (boot.archUnknown) log.archUnknown = true;
    return { result: { reply, to: replyDestination(req, false, this.replyCfg.clientPort), log }, level: 'info', log };
  }

  private bootAnswer(req: DhcpPacket, mac: string): DhcpBootAnswer {
    const vc = getString(req, OPT.vendorClass);
    const facts: ClientFacts = { mac, archCode: clientArchCode(req), isIpxe: isIpxe(req) };
    if (vc?.startsWith('HTTPClient')) facts.httpClient = true;
    return this.opts.backend.bootAnswer(facts);
  }

  /**
   * RFC 2131 4.3.1: a relayed request is served from the subnet containing
   * giaddr; a unicast renewal from a routed client (giaddr 0) from the
   * subnet containing ciaddr; anything else from the local subnet.
   */
  private subnetFor(req: DhcpPacket): ServedSubnet | undefined {
    if (req.giaddr !== ZERO) return this.subnets.find((s) => inSubnet(req.giaddr, s.subnet));
    if (req.ciaddr !== ZERO) {
      const remote = this.subnets.find((s) => inSubnet(req.ciaddr, s.subnet));
      if (remote) return remote;
    }
    return this.subnets[0];
  }
}

export function createDhcpHandler(opts: DhcpHandlerOptions): DhcpHandler {
  return new DhcpHandler(opts);
}
