/** The DHCP handler over the real inventory backend: policies and leases as the daemon runs them. */
import { describe, it, expect, afterEach } from 'vitest';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { OPT, MessageType } from '../../server/dhcp/options.js';
import type { DhcpPacket } from '../../server/dhcp/packet.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';

let f: Fixture;
afterEach(() => f?.cleanup());

function handler(fx: Fixture) {
  const c = fx.config;
  return new DhcpHandler({
    serverId: c.serverAddress, subnet: c.dhcp.subnet, router: c.dhcp.router, dns: c.dhcp.dns, domain: c.dhcp.domain,
    leaseTime: c.dhcp.leaseTime, pool: c.dhcp.pool, unknownClients: c.dhcp.unknownClients, relays: c.dhcp.relays,
    backend: new InventoryDhcpBackend(fx.inv, c),
  });
}

function packet(mac: string, type: number, extra: DhcpPacket['options'] = []): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 42, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0',
    giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: OPT.messageType, data: Buffer.from([type]) }, ...extra],
  };
}

const ip = (s: string) => Buffer.from(s.split('.').map(Number));

describe('DHCP over the inventory', () => {
  it('policy ignore: unknown MACs get nothing, a registered MAC without an address gets the pool', () => {
    f = makeFixture((d: any) => { d.dhcp.unknownClients = 'ignore'; });
    addLabRoot(f);
    const h = handler(f);
    expect(h.handle(packet('52:54:00:00:00:01', MessageType.DISCOVER), { receivedOn: 'interface', now: Date.now() })).toBeNull();
    f.inv.machines.add('52:54:00:00:00:01', { root: 'lab' });
    const offer = h.handle(packet('52:54:00:00:00:01', MessageType.DISCOVER), { receivedOn: 'interface', now: Date.now() });
    expect(offer?.reply.yiaddr).toBe('10.77.0.100');
  });

  it('persists the lease on ACK and gives it back after a restart', () => {
    f = makeFixture();
    const mac = '52:54:00:00:00:02';
    const now = Date.now();
    const offer = handler(f).handle(packet(mac, MessageType.DISCOVER), { receivedOn: 'interface', now })!;
    expect(f.inv.leases.byMac(mac)).toBeUndefined(); // offers live in memory only
    const ack = handler(f).handle(packet(mac, MessageType.REQUEST, [
      { code: OPT.serverId, data: ip('10.77.0.1') }, { code: OPT.requestedIp, data: ip(offer.reply.yiaddr) },
    ]), { receivedOn: 'interface', now })!;
    expect(ack.log.outcome).toMatch(/^ack/);
    expect(f.inv.leases.byMac(mac)).toMatchObject({ ipv4: offer.reply.yiaddr, state: 'bound' });
    // a new handler (a restarted daemon) offers the same address again
    const again = handler(f).handle(packet(mac, MessageType.DISCOVER), { receivedOn: 'interface', now: now + 1000 })!;
    expect(again.reply.yiaddr).toBe(offer.reply.yiaddr);
    expect(f.inv.events.list(mac).map((e) => e.detail.type)).toEqual(['DISCOVER', 'REQUEST', 'DISCOVER']);
  });
});
