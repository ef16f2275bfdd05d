/**
 * What the DHCP server needs from the inventory. The protocol code never
 * decides what a machine boots or owns: it asks this interface (the real
 * implementation sits on SQLite; memory-backend.ts is for tests and benches).
 */
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';

export interface LeaseRecord { mac: string; ipv4: string; hostname: string | null; state: 'bound' | 'released' | 'declined'; expiresAt: number /* epoch ms */ }

export interface LeaseStore {
  byMac(mac: string): LeaseRecord | undefined;
  byIp(ipv4: string): LeaseRecord | undefined;
  /** Insert or replace this MAC's lease (one lease per MAC). Durable when it returns. */
  upsert(lease: LeaseRecord): void;
  release(mac: string): void;
  /** Mark an address declined (RFC 2131 DHCPDECLINE) until `until`; `mac` is the decliner. */
  decline(ipv4: string, mac: string, until: number): void;
}

export interface DhcpBackend {
  reservation(mac: string): Reservation | undefined;
  /**
   * The MAC is registered (with or without a static address). Policy
   * `unknownClients: ignore` still serves a registered machine that has no
   * static address, from the pool. Absent: only reservations count as known.
   */
  isRegistered?(mac: string): boolean;
  /** MAC of the registered machine that owns this IP, if any (the pool must never hand it out). */
  reservedBy(ipv4: string): string | undefined;
  bootAnswer(facts: ClientFacts): DhcpBootAnswer;
  leases: LeaseStore;
  /** Called for every request with what the client told us (discovery + boot timeline). */
  clientSeen?(seen: { mac: string; type: string; archCode?: number; vendorClass?: string; userClass?: string; hostname?: string; ip?: string; bootFile?: string }): void;
}
