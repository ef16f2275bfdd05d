/**
 * The DHCP server's backend over the inventory (smee's split: the protocol
 * handler knows nothing of SQLite; this file knows nothing of packets).
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import type { DhcpBackend } from '../dhcp/backend.js';
import type { ClientFacts, DhcpBootAnswer, Reservation } from '../boot/types.js';
import { bootAnswerFor } from '../boot/decide.js';


export class InventoryDhcpBackend implements DhcpBackend {
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
  }
}
