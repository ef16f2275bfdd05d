/**
 * The DHCP server's backend over the inventory (smee's split: the protocol
 * handler knows nothing of SQLite; this file knows nothing of packets).
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory, Sighting } from '../inventory/index.js';
import type { DhcpBackend } from '../dhcp/backend.js';
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';
import { bootAnswerFor } from '../boot/decide.js';


const DISCOVERY_WRITE_MS = 10_000;

export class InventoryDhcpBackend implements DhcpBackend {
  private readonly discoveryWrites = new Map<string, { at: number; pending: number }>();

  constructor(
    private readonly inv: Inventory,
    private readonly config: SiderealConfig,
    private readonly opts: { recordEvents: boolean } = { recordEvents: true },
  ) {}

  get leases() {
    return this.inv.leases;
  }

  reservation(mac: string): Reservation | undefined {
    const m = this.inv.machines.get(mac);
    return m?.ipv4 ? { ipv4: m.ipv4, hostname: m.hostname } : undefined;
  }

  isRegistered(mac: string): boolean {
    return this.inv.machines.get(mac) !== undefined;
  }

  reservedBy(ipv4: string): string | undefined {
    return this.inv.machines.byIp(ipv4)?.mac;
  }

  bootAnswer(facts: ClientFacts): DhcpBootAnswer {
    return bootAnswerFor(this.inv, this.config, facts);
  }

  clientSeen(seen: { mac: string; type: string; archCode?: number; vendorClass?: string; userClass?: string; hostname?: string; ip?: string; bootFile?: string }): void {
    if (!this.opts.recordEvents) return;
    const { mac, ...detail } = seen;
    this.inv.events.record(mac, 'dhcp', detail);
    if (!this.inv.machines.get(mac)) this.discover(seen);
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
    this.inv.discovered.record(seen, (last?.pending ?? 0) + 1, now);
    this.discoveryWrites.set(seen.mac, { at: now, pending: 0 });
    if (this.discoveryWrites.size > 10_000) this.discoveryWrites.clear();
  }
}
