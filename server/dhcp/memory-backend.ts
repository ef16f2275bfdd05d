/**
 * In-memory DhcpBackend for unit tests, the namespace runner and benchmarks.
 * Same semantics as the SQLite one: one lease per MAC, declines keyed by IP.
 */
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';
import { archFromOption93 } from './arch.js';
import type { DhcpBackend, LeaseRecord, LeaseStore } from './backend.js';

export class MemoryLeaseStore implements LeaseStore {
  private readonly macs = new Map<string, LeaseRecord>();
  private readonly ips = new Map<string, Set<string>>();   // ip -> MACs with a lease record on it
  private readonly declined = new Map<string, LeaseRecord>();

  byMac(mac: string): LeaseRecord | undefined {
    return this.macs.get(mac);
  }

  /** A bound lease on this IP first, then a decline of it, then a released lease. */
  byIp(ipv4: string): LeaseRecord | undefined {
    let other: LeaseRecord | undefined;
    for (const mac of this.ips.get(ipv4) ?? []) {
      const l = this.macs.get(mac)!;
      if (l.state === 'bound') return l;
      other = l;
    }
    return this.declined.get(ipv4) ?? other;
  }

  upsert(lease: LeaseRecord): void {
    this.remove(lease.mac);
    this.macs.set(lease.mac, { ...lease });
    let set = this.ips.get(lease.ipv4);
    if (!set) this.ips.set(lease.ipv4, (set = new Set()));
    set.add(lease.mac);
    this.declined.delete(lease.ipv4);
  }

  release(mac: string): void {
    const l = this.macs.get(mac);
    if (l) this.macs.set(mac, { ...l, state: 'released' });
  }

  decline(ipv4: string, mac: string, until: number): void {
    const mine = this.macs.get(mac);
    if (mine && mine.ipv4 === ipv4) this.remove(mac);
    this.declined.set(ipv4, { mac, ipv4, hostname: null, state: 'declined', expiresAt: until });
  }

  all(): LeaseRecord[] {
    return [...this.macs.values(), ...this.declined.values()];
  }

  private remove(mac: string): void {
    const old = this.macs.get(mac);
    if (!old) return;
    this.macs.delete(mac);
    const set = this.ips.get(old.ipv4);
    set?.delete(mac);
    if (set && set.size === 0) this.ips.delete(old.ipv4);
  }
}

export interface MemoryBackendOptions {
  /** Address of the TFTP/HTTP server put in siaddr, option 66 and URLs. */
  server: string;
  reservations?: Map<string, Reservation>;
  leases?: LeaseStore;
}

export const BOOT_FILES = {
  bios: 'pxelinux.0',
  efi32: 'efi32/syslinux.efi',
  efi64: 'efi64/syslinux.efi',
  arm64: 'arm64/grubnetaa64.efi',
} as const;

export class MemoryBackend implements DhcpBackend {
  readonly leases: LeaseStore;
  readonly reservations: Map<string, Reservation>;
  readonly seen: Array<Parameters<NonNullable<DhcpBackend['clientSeen']>>[0]> = [];
  private readonly server: string;

  constructor(opts: MemoryBackendOptions) {
    this.server = opts.server;
    this.reservations = opts.reservations ?? new Map();
    this.leases = opts.leases ?? new MemoryLeaseStore();
  }

  reservation(mac: string): Reservation | undefined {
    return this.reservations.get(mac);
  }

  reservedBy(ipv4: string): string | undefined {
    // Tests mutate `reservations` directly, so no cached index: a linear scan is fine at test sizes.
    for (const [mac, r] of this.reservations) if (r.ipv4 === ipv4) return mac;
    return undefined;
  }

  bootAnswer(facts: ClientFacts): DhcpBootAnswer {
    const { arch, unknown } = archFromOption93(facts.archCode);
    const base = { arch, archUnknown: unknown, nextServer: this.server };
    if (facts.isIpxe) {
      return { ...base, bootFile: `http://${this.server}:8080/boot/${facts.mac}.ipxe`, vendorClass: 'PXEClient' };
    }
    if (arch === 'efi64-http' || facts.httpClient) {
      return { ...base, bootFile: `http://${this.server}/boot/efi64/syslinux.efi`, vendorClass: 'HTTPClient' };
    }
    return { ...base, bootFile: BOOT_FILES[arch], vendorClass: 'PXEClient' };
  }

  clientSeen(seen: Parameters<NonNullable<DhcpBackend['clientSeen']>>[0]): void {
    this.seen.push(seen);
    if (this.seen.length > 10_000) this.seen.splice(0, this.seen.length - 10_000);
  }
}
