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
import { broadcast, fromInt, inRange, inSubnet, networkOf, toInt, type Range, type Subnet } from '../net/ipv4.js';

export interface ServedSubnet {
  subnet: Subnet;
  router?: string;
  pool?: Range;
}

export type Allocation =
  | { ip: string; source: 'reservation' | 'lease' | 'requested' | 'previous' | 'pool'; hostname: string | null }
  | { ip: null; reason: 'pool-exhausted' | 'no-pool' | 'reservation-outside-subnet' };

interface Offer { ip: string; expiresAt: number }

export class LeaseAllocator {
  private readonly offers = new Map<string, Offer>();     // mac -> offer
  private readonly offeredIps = new Map<string, string>(); // ip -> mac

  constructor(
    private readonly backend: DhcpBackend,
    private readonly serverId: string,
    private readonly offerTtlMs = 60_000,
  ) {}

  /** Which address this MAC gets in this subnet now; pure apart from expiring old offers. */
  allocate(mac: string, sub: ServedSubnet, requested: string | undefined, now: number, reservation?: Reservation): Allocation {
    this.expireOffers(now);
    const res = reservation ?? this.backend.reservation(mac);
    if (res) {
      if (!inSubnet(res.ipv4, sub.subnet)) return { ip: null, reason: 'reservation-outside-subnet' };
      return { ip: res.ipv4, source: 'reservation', hostname: res.hostname };
    }
    if (!sub.pool) return { ip: null, reason: 'no-pool' };
    const pool = sub.pool;

    const offered = this.offers.get(mac);
    if (offered && inRange(offered.ip, pool) && this.isFreeFor(offered.ip, mac, sub, now)) {
      return { ip: offered.ip, source: 'lease', hostname: null };
    }
    const lease = this.backend.leases.byMac(mac);
    if (lease && lease.state === 'bound' && lease.expiresAt > now && inRange(lease.ipv4, pool) && this.isFreeFor(lease.ipv4, mac, sub, now)) {
      return { ip: lease.ipv4, source: 'lease', hostname: lease.hostname };
    }
    if (requested && inRange(requested, pool) && this.isFreeFor(requested, mac, sub, now)) {
      return { ip: requested, source: 'requested', hostname: null };
    }
    // Stable addresses across reboots: an expired or released lease's address if still free.
    if (lease && lease.state !== 'declined' && inRange(lease.ipv4, pool) && this.isFreeFor(lease.ipv4, mac, sub, now)) {
      return { ip: lease.ipv4, source: 'previous', hostname: lease.hostname };
    }
    const end = toInt(pool.end);
    for (let n = toInt(pool.start); n <= end; n++) {
      const ip = fromInt(n);
      if (this.isFreeFor(ip, mac, sub, now)) return { ip, source: 'pool', hostname: null };
    }
    return { ip: null, reason: 'pool-exhausted' };
  }

  /** May `ip` be handed to `mac` in `sub`? */
  isFreeFor(ip: string, mac: string, sub: ServedSubnet, now: number): boolean {
    if (!inSubnet(ip, sub.subnet)) return false;
    const n = toInt(ip);
    if (sub.subnet.prefix < 31 && (n === networkOf(sub.subnet) || ip === broadcast(sub.subnet))) return false;
    if (ip === this.serverId || ip === sub.router) return false;
    const owner = this.backend.reservedBy(ip);
    if (owner !== undefined && owner !== mac) return false;
    const lease = this.backend.leases.byIp(ip);
    if (lease && lease.expiresAt > now) {
      // A declined address is out for everyone, the decliner included (it saw a conflict).
      if (lease.state === 'declined') return false;
      if (lease.state === 'bound' && lease.mac !== mac) return false;
    }
    const offeredTo = this.offeredIps.get(ip);
    if (offeredTo !== undefined && offeredTo !== mac) return false;
    return true;
  }

  /** Hold an offered address for this MAC (RFC 2131 4.3.1: "SHOULD" reserve it). */
  hold(mac: string, ip: string, now: number): void {
    this.dropOffer(mac);
    this.offers.set(mac, { ip, expiresAt: now + this.offerTtlMs });
    this.offeredIps.set(ip, mac);
  }

  dropOffer(mac: string): void {
    const o = this.offers.get(mac);
    if (!o) return;
    this.offers.delete(mac);
    if (this.offeredIps.get(o.ip) === mac) this.offeredIps.delete(o.ip);
  }

  /** ACK: persist the lease (durable when upsert returns), then forget the offer. */
  commit(mac: string, ip: string, hostname: string | null, leaseTimeS: number, now: number): void {
    this.backend.leases.upsert({ mac, ipv4: ip, hostname, state: 'bound', expiresAt: now + leaseTimeS * 1000 });
    this.dropOffer(mac);
  }

  /** RFC 2131 4.3.2 INIT-REBOOT: do we know this client at all? */
  hasRecord(mac: string): boolean {
    return !!this.backend.reservation(mac) || !!this.backend.leases.byMac(mac) || this.offers.has(mac);
  }

  pendingOffers(): number {
    return this.offers.size;
  }

  private expireOffers(now: number): void {
    for (const [mac, o] of this.offers) if (o.expiresAt <= now) this.dropOffer(mac);
  }
}
