/**
 * Address allocation. Order (RFC 2131 4.3.1, the server's "choose an address"):
 * static reservation; the MAC's existing lease; the address the client asked
 * for (option 50); the lowest free pool address. One lease per MAC, so the
 * PXE ROM, iPXE, the bootloader and the OS all get the same address (the
 * captures show three DHCP exchanges per boot from the same MAC).
 *
 * Offers live only in memory (~60 s); a lease is written only on ACK.
 */
import type { Reservation } from '../boot/types.js';
import type { DhcpBackend } from './backend.js';
import { fromInt, inRange, inSubnet, maskInt, networkOf, toInt, type Range, type Subnet } from '../net/ipv4.js';

export interface ServedSubnet {
  subnet: Subnet;
  router?: string;
  pool?: Range;
  /** Addresses for registered machines without a static one, never offered to another MAC (dhcpd's known-clients pool). */
  registeredPool?: Range;
}

export type Allocation =
  | { ip: string; source: 'reservation' | 'lease' | 'requested' | 'previous' | 'pool'; hostname: string | null }
  | { ip: null; reason: 'pool-exhausted' | 'offers-full' | 'no-pool' | 'reservation-outside-subnet' };

interface Offer { ip: string; expiresAt: number }

/** A subnet's network, mask and broadcast as integers, worked out once per subnet object. */
const subnetCache = new WeakMap<Subnet, { network: number; mask: number; broadcast: number }>();
function subnetInts(s: Subnet): { network: number; mask: number; broadcast: number } {
  let v = subnetCache.get(s);
  if (!v) {
    const network = networkOf(s);
    const mask = maskInt(s.prefix);
    v = { network, mask, broadcast: (network | (~mask >>> 0)) >>> 0 };
    subnetCache.set(s, v);
  }
  return v;
}

/**
 * What the allocator knows of a pool between scans, so a pool of 10,000
 * leases is not walked from its first address (two inventory reads per
 * address) on every new client. `next`: every address below it was taken
 * when last looked at and nothing seen since has freed it (a freed lease or
 * offer lowers `next`; a lease that expires resets it at `recheckAt`).
 * Addresses held by a reservation are kept apart in `reserved` and looked at
 * again on every scan, since the inventory can drop a reservation at any time.
 */
interface PoolCursor { next: number; reserved: number[]; recheckAt: number; resetAt: number }

/** Even with nothing seen to free an address, the pool is scanned from its start again this often. */
const POOL_RESCAN_MS = 5 * 60_000;

type Block = null | 'fixed' | 'reserved' | 'offered' | { until: number };

export class LeaseAllocator {
  private readonly offers = new Map<string, Offer>();     // mac -> offer
  private readonly offeredIps = new Map<string, string>(); // ip -> mac
  private nextOfferExpiry = Infinity;
  private readonly cursors = new Map<Range, PoolCursor>();

  constructor(
    private readonly backend: DhcpBackend,
    private readonly serverId: string,
    private readonly offerTtlMs = 60_000,
    /**
     * Offers held at once. The pool bounds them too, but a /16 pool is 65,000 offers a flood
     * of made-up MACs can hold in memory; a registered machine still takes the oldest one.
     */
    private readonly maxOffers = 4096,
  ) {}

  /** Which address this MAC gets in this subnet now; pure apart from expiring old offers. */
  allocate(mac: string, sub: ServedSubnet, requested: string | undefined, now: number, reservation?: Reservation): Allocation {
    this.expireOffers(now);
    const res = reservation ?? this.backend.reservation(mac);
    if (res) {
      if (!inSubnet(res.ipv4, sub.subnet)) return { ip: null, reason: 'reservation-outside-subnet' };
      return { ip: res.ipv4, source: 'reservation', hostname: res.hostname };
    }
    // A registered machine draws from the registered pool first: a flood of made-up MACs never reaches it.
    const registeredPool = sub.registeredPool && this.backend.isRegistered?.(mac) ? sub.registeredPool : undefined;
    const pools = [registeredPool, sub.pool].filter((p): p is Range => !!p);
    if (pools.length === 0) return { ip: null, reason: 'no-pool' };
    const inPools = (ip: string) => pools.some((p) => inRange(ip, p));
    const preempt = () => (sub.pool ? this.preemptOffer(sub.pool, mac) : null);

    const offered = this.offers.get(mac);
    if (offered && inPools(offered.ip) && this.isFreeFor(offered.ip, mac, sub, now)) {
      return { ip: offered.ip, source: 'lease', hostname: null };
    }
    const lease = this.backend.leases.byMac(mac);
    if (lease && lease.state === 'bound' && lease.expiresAt > now && inPools(lease.ipv4) && this.isFreeFor(lease.ipv4, mac, sub, now)) {
      return { ip: lease.ipv4, source: 'lease', hostname: lease.hostname };
    }
    // Past here the MAC gets a new offer: at the cap, only by taking an unregistered MAC's.
    if (this.offers.size >= this.maxOffers && !this.offers.has(mac)) {
      const ip = preempt();
      return ip === null ? { ip: null, reason: 'offers-full' } : { ip, source: 'pool', hostname: null };
    }
    if (requested && inPools(requested) && this.isFreeFor(requested, mac, sub, now)) {
      return { ip: requested, source: 'requested', hostname: null };
    }
    // Stable addresses across reboots: an expired or released lease's address if still free.
    if (lease && lease.state !== 'declined' && inPools(lease.ipv4) && this.isFreeFor(lease.ipv4, mac, sub, now)) {
      return { ip: lease.ipv4, source: 'previous', hostname: lease.hostname };
    }
    for (const p of pools) {
      const ip = this.lowestFree(p, mac, sub, now);
      if (ip !== null) return { ip, source: 'pool', hostname: null };
    }
    const ip = preempt();
    return ip === null ? { ip: null, reason: 'pool-exhausted' } : { ip, source: 'pool', hostname: null };
  }

  /**
   * Starvation (a flood of DISCOVERs from made-up MACs holds every pool address in an offer):
   * a registered machine still boots, on the address offered longest ago to an unregistered
   * MAC. An offer is not a lease (RFC 2131 4.3.1 only says the server SHOULD hold it): that
   * MAC's REQUEST, if it ever comes, gets a NAK and it starts over. Bound leases are never
   * taken (their holder may be using the address).
   */
  private preemptOffer(pool: Range, mac: string): string | null {
    if (!this.backend.isRegistered?.(mac)) return null;
    for (const [other, o] of this.offers) {
      if (other === mac || !inRange(o.ip, pool) || this.backend.isRegistered?.(other)) continue;
      this.dropOffer(other, o.ip);
      return o.ip;
    }
    return null;
  }

  /** The lowest free address of the pool (first fit), from the pool's cursor. */
  private lowestFree(pool: Range, mac: string, sub: ServedSubnet, now: number): string | null {
    const start = toInt(pool.start);
    const end = toInt(pool.end);
    let c = this.cursors.get(pool);
    if (!c || now >= c.recheckAt || now >= c.resetAt || now < c.resetAt - 2 * POOL_RESCAN_MS) {
      c = { next: start, reserved: [], recheckAt: Infinity, resetAt: now + POOL_RESCAN_MS };
      this.cursors.set(pool, c);
    }
    // A reservation below the cursor may have been dropped since: those few are looked at first.
    for (let k = 0; k < c.reserved.length; k++) {
      const n = c.reserved[k]!;
      if (n >= c.next) break;
      const why = this.blocked(fromInt(n), mac, sub, now);
      if (why === 'reserved') continue;
      c.reserved.splice(k--, 1);
      if (why === null) return fromInt(n);
      if (typeof why === 'object') c.recheckAt = Math.min(c.recheckAt, why.until);
    }
    for (let n = c.next; n <= end; n++) {
      const ip = fromInt(n);
      const why = this.blocked(ip, mac, sub, now);
      if (why === null) {
        c.next = n;
        return ip;
      }
      if (why === 'reserved') {
        if (!c.reserved.includes(n)) { c.reserved.push(n); c.reserved.sort((a, b) => a - b); }
      } else if (typeof why === 'object') {
        c.recheckAt = Math.min(c.recheckAt, why.until);
      }
      c.next = n + 1;
    }
    return null;
  }

  /** An address in `ip`'s pool may have become free: the next scan starts at or below it. */
  addressFreed(ip: string): void {
    const n = toInt(ip);
    for (const [pool, c] of this.cursors) if (inRange(ip, pool) && n < c.next) c.next = n;
  }

  /** May `ip` be handed to `mac` in `sub`? */
  isFreeFor(ip: string, mac: string, sub: ServedSubnet, now: number): boolean {
    return this.blocked(ip, mac, sub, now) === null;
  }

  /** Why `ip` cannot go to `mac` now, or null when it can. */
  private blocked(ip: string, mac: string, sub: ServedSubnet, now: number): Block {
    const n = toInt(ip);
    const net = subnetInts(sub.subnet);
    if (((n & net.mask) >>> 0) !== net.network) return 'fixed';
    if (sub.subnet.prefix < 31 && (n === net.network || n === net.broadcast)) return 'fixed';
    if (ip === this.serverId || ip === sub.router) return 'fixed';
    const offeredTo = this.offeredIps.get(ip);
    if (offeredTo !== undefined && offeredTo !== mac) return 'offered';
    const owner = this.backend.reservedBy(ip);
    if (owner !== undefined && owner !== mac) return 'reserved';
    const lease = this.backend.leases.byIp(ip);
    if (lease && lease.expiresAt > now) {
      // A declined address is out for everyone, the decliner included (it saw a conflict).
      if (lease.state === 'declined') return { until: lease.expiresAt };
      if (lease.state === 'bound' && lease.mac !== mac) return { until: lease.expiresAt };
    }
    return null;
  }

  /** Hold an offered address for this MAC (RFC 2131 4.3.1: "SHOULD" reserve it). */
  hold(mac: string, ip: string, now: number): void {
    this.dropOffer(mac, ip); // a repeated DISCOVER holds the same address again: it never became free
    const expiresAt = now + this.offerTtlMs;
    this.offers.set(mac, { ip, expiresAt });
    this.offeredIps.set(ip, mac);
    if (expiresAt < this.nextOfferExpiry) this.nextOfferExpiry = expiresAt;
  }

  /** Forget this MAC's offer; its address is free again unless `keptBy` (the ACK's lease, a new offer) holds it now. */
  dropOffer(mac: string, keptBy?: string): void {
    const o = this.offers.get(mac);
    if (!o) return;
    this.offers.delete(mac);
    if (this.offeredIps.get(o.ip) === mac) {
      this.offeredIps.delete(o.ip);
      if (o.ip !== keptBy) this.addressFreed(o.ip);
    }
  }

  /**
   * ACK: record the lease, then forget the offer. With `defer` and a store
   * that can stage writes, the lease is staged and durable only after the
   * backend's flush() (the caller must not send the ACK before); otherwise
   * durable when this returns. Returns whether the write was deferred.
   */
  commit(mac: string, ip: string, hostname: string | null, leaseTimeS: number, now: number, defer = false): boolean {
    const store = this.backend.leases;
    const before = store.byMac(mac);
    const lease = { mac, ipv4: ip, hostname, state: 'bound' as const, expiresAt: now + leaseTimeS * 1000 };
    const deferred = defer && !!store.stage && !!this.backend.flush;
    if (deferred) store.stage!(lease);
    else store.upsert(lease);
    this.dropOffer(mac, ip);
    if (before && before.ipv4 !== ip) this.addressFreed(before.ipv4);
    return deferred;
  }

  /** RFC 2131 4.3.2 INIT-REBOOT: do we know this client at all? */
  hasRecord(mac: string): boolean {
    return !!this.backend.reservation(mac) || !!this.backend.leases.byMac(mac) || this.offers.has(mac);
  }

  pendingOffers(): number {
    return this.offers.size;
  }

  private expireOffers(now: number): void {
    if (now < this.nextOfferExpiry) return;
    let next = Infinity;
    for (const [mac, o] of this.offers) {
      if (o.expiresAt <= now) this.dropOffer(mac);
      else if (o.expiresAt < next) next = o.expiresAt;
    }
    this.nextOfferExpiry = next;
  }
}
