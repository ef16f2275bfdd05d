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
  /**
   * Optional write-behind form of upsert: reads see the lease at once, it is
   * durable only once the backend's flush() has returned (group commit: one
   * transaction, one fsync, for every ACK of an event-loop turn). The server
   * sends no ACK for a staged lease before that.
   */
  stage?(lease: LeaseRecord): void;
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
  /**
   * A request is being handled: per-request caches start empty. `willFlush`:
   * the caller will call flush() after it (the server does, once per
   * event-loop turn), so writes may wait for it; otherwise they are made now.
   */
  beginPacket?(willFlush: boolean): void;
  /**
   * Make everything staged so far durable (leases) or recorded (sightings,
   * events) in as few transactions as possible; throws when the leases could
   * not be stored (or returns a promise that settles once they are stored
   * or not). Called by the server once per event-loop turn.
   */
  flush?(): void | Promise<void>;
  /** Release what the backend holds, after its last flush (the server calls it on close). */
  close?(): Promise<void>;
  /** Called for every request with what the client told us (discovery + boot timeline). */
  clientSeen?(seen: { mac: string; type: string; archCode?: number; vendorClass?: string; userClass?: string; hostname?: string; ip?: string; bootFile?: string }): void;
}
