/**
 * The DHCP server's backend over the inventory (smee's split: the protocol
 * handler knows nothing of SQLite; this file knows nothing of packets).
 *
 * Per packet the machine row is read once: the handler asks for the
 * reservation, the registration and the boot answer, and each of those reads
 * the same row, so it is kept from one beginPacket() to the next (the
 * handling of one request is synchronous: nothing can change it meanwhile). Leases are staged and
 * stored, with the packets' sightings, by flush(): the server's group commit.
 * Boot events go through the inventory's own queue (events.recordSoon).
 */
import type { SiderealConfig } from '../config/config.js';
import type { FlushOptions, Inventory, Machine, Sighting } from '../inventory/index.js';
import type { DhcpBackend } from '../dhcp/backend.js';
import type { DhcpHandlerOptions } from '../dhcp/options-config.js';
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';
import { bootAnswerFor } from '../boot/decide.js';


const DISCOVERY_WRITE_MS = 10_000;
/** Sightings waiting for the next flush; beyond this they are written at once. */
const MAX_QUEUED = 10_000;
/** Records of turns without a lease wait this long, or until this many are queued. */
const RECORDS_DELAY_MS = 20;
const RECORDS_BATCH = 256;

/**
 * The DHCP handler's policy from the config: one place, so `explain` answers with exactly
 * what the running server would.
 */
export function dhcpPolicy(config: SiderealConfig): Omit<DhcpHandlerOptions, 'backend'> {
  const d = config.dhcp;
  return {
    serverId: config.serverAddress, subnet: d.subnet, router: d.router, dns: d.dns, domain: d.domain, leaseTime: d.leaseTime,
    pool: d.pool, registeredPool: d.registeredPool, unknownClients: d.unknownClients, relays: d.relays, maxPendingOffers: d.maxPendingOffers,
  };
}

export class InventoryDhcpBackend implements DhcpBackend {
  private readonly discoveryWrites = new Map<string, { at: number; pending: number }>();
  /** Machine rows read while handling the current packet (null: not registered). */
  private readonly rows = new Map<string, Machine | null>();
  private readonly view: Inventory;
  private recordsTimer: NodeJS.Timeout | undefined;
  private sightings: Array<{ seen: Sighting; count: number; at: number }> = [];
  /** Sightings that could not be written (they are worth less than an ACK: never thrown). */
  sightingErrors = 0;

  constructor(
    private readonly inv: Inventory,
    private readonly config: SiderealConfig,
    private readonly opts: {
      recordEvents: boolean;
      /** A background fsync of ACKed leases failed (dhcp.ackAfterFsync false). */
      onLeaseSyncError?: FlushOptions['onSyncError'];
    } = { recordEvents: true },
  ) {
    // The boot decision reads through this view, so it shares the packet's machine row.
    const machines = Object.create(inv.machines) as Inventory['machines'];
    machines.get = (mac: string) => this.machine(mac);
    this.view = Object.create(inv, { machines: { value: machines } }) as Inventory;
    // Fixed for this backend's life: a config reload builds a new one.
    this.leaseFlush = { waitForDisk: config.dhcp.ackAfterFsync, onSyncError: opts.onLeaseSyncError };
  }

  private readonly leaseFlush: FlushOptions;

  get leases() {
    return this.inv.leases;
  }

  beginPacket(willFlush: boolean): void {
    this.rows.clear();
    this.batching = willFlush;
  }

  private batching = false;

  private machine(mac: string): Machine | undefined {
    const hit = this.rows.get(mac);
    if (hit !== undefined) return hit ?? undefined;
    const m = this.inv.machines.get(mac);
    this.rows.set(mac, m ?? null);
    return m;
  }

  reservation(mac: string): Reservation | undefined {
    const m = this.machine(mac);
    return m?.ipv4 ? { ipv4: m.ipv4, hostname: m.hostname } : undefined;
  }

  isRegistered(mac: string): boolean {
    return this.machine(mac) !== undefined;
  }

  reservedBy(ipv4: string): string | undefined {
    return this.inv.machines.byIp(ipv4)?.mac;
  }

  bootAnswer(facts: ClientFacts): DhcpBootAnswer {
    return bootAnswerFor(this.view, this.config, facts);
  }

  clientSeen(seen: { mac: string; type: string; archCode?: number; vendorClass?: string; userClass?: string; hostname?: string; ip?: string; bootFile?: string }): void {
    if (!this.opts.recordEvents) return;
    const { mac, ...detail } = seen;
    // Boot events are queued by the inventory itself (written together within milliseconds).
    this.inv.events.recordSoon(mac, 'dhcp', detail);
    if (!this.machine(mac)) this.discover(seen);
    if (!this.batching || this.sightings.length > MAX_QUEUED) this.flushSightings();
  }

  /**
   * The server's group commit, once per event-loop turn. Staged leases are
   * stored in one transaction that also carries the queued sightings: they
   * ride along for free. The promise returned settles once that transaction
   * is on disk (the fsync runs off the event loop: inventory/wal-sync.ts);
   * with dhcp.ackAfterFsync false there is no promise: the ACKs go out once
   * the transaction is in the WAL, and the fsync follows.
   * A turn without leases (DISCOVERs only) leaves its sightings queued, to be
   * written RECORDS_DELAY_MS later or once RECORDS_BATCH are queued: a
   * commit costs more than a packet.
   * Throws (or rejects) only when the leases could not be stored.
   */
  flush(): void | Promise<void> {
    if (this.inv.leases.pendingCount() > 0) {
      const sightings = this.takeSightings();
      return this.inv.leases.flush(sightings.length ? () => this.recordSightings(sightings) : undefined, this.leaseFlush);
    }
    const queued = this.sightings.length;
    if (queued >= RECORDS_BATCH) this.flushSightings();
    else if (queued > 0 && !this.recordsTimer) {
      this.recordsTimer = setTimeout(() => {
        this.recordsTimer = undefined;
        try { this.flushSightings(); } catch { this.sightingErrors++; }
      }, RECORDS_DELAY_MS);
      this.recordsTimer.unref();
    }
  }

  /** Write what is queued (the server calls this when it closes). */
  async close(): Promise<void> {
    this.flushSightings();
  }

  private takeSightings() {
    clearTimeout(this.recordsTimer);
    this.recordsTimer = undefined;
    const out = this.sightings;
    this.sightings = [];
    return out;
  }

  private recordSightings(sightings: Array<{ seen: Sighting; count: number; at: number }>): void {
    for (const s of sightings) this.inv.discovered.record(s.seen, s.count, s.at);
  }

  /** The queued sightings now, in one transaction; staged leases are left alone. */
  private flushSightings(): void {
    const sightings = this.takeSightings();
    if (sightings.length) this.inv.db.transaction(() => this.recordSightings(sightings)).immediate();
  }

  /**
   * An unregistered MAC is recorded for adoption, at most once per
   * DISCOVERY_WRITE_MS per MAC (the packets in between are counted): a
   * client retrying DISCOVERs must not turn into a disk write per packet.
   */
  private discover(seen: Sighting): void {
    const now = Date.now();
    const last = this.discoveryWrites.get(seen.mac);
    if (last && now - last.at < DISCOVERY_WRITE_MS) {
      last.pending++;
      return;
    }
    this.sightings.push({ seen, count: (last?.pending ?? 0) + 1, at: now });
    this.discoveryWrites.set(seen.mac, { at: now, pending: 0 });
    if (this.discoveryWrites.size > 10_000) this.discoveryWrites.clear();
  }
}
