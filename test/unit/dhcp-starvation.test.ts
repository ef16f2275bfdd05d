/**
 * Resource bounds of the DHCP server (issue 7): packets per MAC per second, and a starvation
 * flood of 10,000 made-up MACs that cannot keep registered machines from booting.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { dhcpPolicy, InventoryDhcpBackend } from '../../server/daemon/backend.js';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { MemoryBackend } from '../../server/dhcp/memory-backend.js';
import { messageType } from '../../server/dhcp/options.js';
import { decodePacket, encodePacket } from '../../server/dhcp/packet.js';
import { RateLimiter } from '../../server/dhcp/rate-limit.js';
import { startDhcpServer } from '../../server/dhcp/server.js';
import { makeRequest } from '../helpers/dhcp-packets.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { captureLogger } from '../helpers/tftp-fixtures.js';

let f: Fixture | undefined;
let client: Socket | undefined;
afterEach(() => {
  f?.cleanup();
  f = undefined;
  client?.close();
  client = undefined;
});

describe('packets per MAC', () => {
  it('a token bucket: a burst passes, then one packet per refill; the first refusal is marked', () => {
    const r = new RateLimiter(10);
    for (let i = 0; i < 10; i++) expect(r.take('a', 0)).toBe('pass');
    expect(r.take('a', 0)).toBe('first-drop');
    expect(r.take('a', 50)).toBe('drop');
    expect(r.take('b', 50)).toBe('pass'); // another MAC is not affected
    expect(r.take('a', 150)).toBe('pass'); // 0.1 s refilled one token
    expect(r.take('a', 150)).toBe('first-drop');
  });

  it('holds a bounded number of MACs: a flood of made-up ones starts the map over', () => {
    const r = new RateLimiter(10, 10, 1000);
    for (let i = 0; i < 5000; i++) r.take(`m${i}`, 0);
    expect(r.size).toBeLessThanOrEqual(1000);
  });

  it('the server answers a looping client ten times, drops the rest with one warning, and still answers others', async () => {
    // Two renewing clients (unicast from ciaddr: every reply comes back to their own loopback address, never a broadcast).
    client = createSocket('udp4');
    await new Promise<void>((r) => client!.bind(0, '127.0.0.5', () => r()));
    const port = client.address().port;
    const other = createSocket('udp4');
    await new Promise<void>((r) => other.bind(port, '127.0.0.6', () => r()));
    const backend = new MemoryBackend({ server: '127.0.0.1' });
    const lease = (mac: string, ipv4: string) => backend.leases.upsert({ mac, ipv4, hostname: null, state: 'bound', expiresAt: Date.now() + 3_600_000 });
    lease('52:54:00:77:00:01', '127.0.0.5');
    lease('52:54:00:77:00:02', '127.0.0.6');
    const { logger, lines } = captureLogger('warn');
    const server = await startDhcpServer({
      address: '127.0.0.1', port: 0, clientPort: port, serverId: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 },
      leaseTime: 3600, pool: { start: '127.0.0.5', end: '127.0.0.9' }, unknownClients: 'pool', backend, logger, maxPacketsPerMac: 10,
    });
    try {
      let fromLoop = 0;
      let fromOther = 0;
      client.on('message', (m) => { if (messageType(decodePacket(m)) === 5) fromLoop++; });
      other.on('message', (m) => { if (messageType(decodePacket(m)) === 5) fromOther++; });
      const renew = (mac: string, ciaddr: string) => encodePacket(makeRequest({ mac, type: 3, ciaddr }));
      for (let i = 0; i < 40; i++) client.send(renew('52:54:00:77:00:01', '127.0.0.5'), server.address().port, '127.0.0.1');
      other.send(renew('52:54:00:77:00:02', '127.0.0.6'), server.address().port, '127.0.0.1');
      for (let i = 0; i < 100 && server.stats.received < 41; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      expect(fromLoop).toBeGreaterThanOrEqual(10);
      expect(fromLoop).toBeLessThanOrEqual(12); // the burst, and what refilled meanwhile
      expect(server.stats.rateLimited).toBe(40 - fromLoop);
      expect(server.stats.errors).toBe(0);
      expect(fromOther).toBe(1);
      expect(lines.filter((l) => l.outcome === 'rate-limited')).toHaveLength(1);
    } finally {
      await server.close();
      other.close();
    }
  });
});

describe('a starvation flood (10,000 made-up MACs sending DISCOVERs)', () => {
  it('takes the pool, but never a registered machine\'s address, and registered machines still get one', () => {
    f = makeFixture(); // pool 10.77.0.100-150
    f.inv.machines.add('52:54:00:ee:00:01', { ipv4: '10.77.0.20' });
    f.inv.machines.add('52:54:00:ee:00:02', {});
    const c = f.config;
    const h = new DhcpHandler({
      serverId: c.serverAddress, subnet: c.dhcp.subnet, router: c.dhcp.router, dns: c.dhcp.dns, domain: c.dhcp.domain,
      leaseTime: c.dhcp.leaseTime, pool: c.dhcp.pool, unknownClients: c.dhcp.unknownClients, relays: c.dhcp.relays,
      backend: new InventoryDhcpBackend(f.inv, c),
    });
    const now = Date.now();
    const ctx = { receivedOn: 'interface' as const, now };
    const offered = new Set<string>();
    let exhausted = 0;
    for (let i = 0; i < 10_000; i++) {
      const mac = `02:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x5a].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      const out = h.handleDetailed(makeRequest({ mac, type: 1, xid: i }), ctx);
      if (out.result) offered.add(out.result.reply.yiaddr);
      else if (out.log.reason === 'pool-exhausted') exhausted++;
    }
    expect(offered.size).toBe(51); // the whole pool is held in offers
    expect(offered.has('10.77.0.20')).toBe(false);
    expect(exhausted).toBe(10_000 - 51);
    // The registered machine with a reservation gets it; the one without gets a pool address all the same.
    expect(h.handle(makeRequest({ mac: '52:54:00:ee:00:01', type: 1 }), ctx)?.reply.yiaddr).toBe('10.77.0.20');
    const taken = h.handle(makeRequest({ mac: '52:54:00:ee:00:02', type: 1 }), ctx)?.reply.yiaddr;
    expect(taken).toMatch(/^10\.77\.0\.(1[0-4]\d|150)$/);
    // ...and can complete its exchange; the flooder the address was offered to gets a NAK.
    const ack = h.handle(makeRequest({ mac: '52:54:00:ee:00:02', type: 3, serverId: c.serverAddress, requestedIp: taken }), ctx);
    expect(ack && messageType(ack.reply)).toBe(5);
    // A new unregistered MAC still gets nothing: the pool is the flood's.
    expect(h.handle(makeRequest({ mac: '02:ff:ff:ff:ff:ff', type: 1 }), ctx)).toBeNull();
  });

  it('holds at most dhcp.maxPendingOffers offers, however big the pool; registered machines still get one', () => {
    f = makeFixture((doc: any) => {
      doc.dhcp.subnet = '10.77.0.0/16';
      doc.dhcp.pool = { start: '10.77.1.1', end: '10.77.255.250' };
      doc.dhcp.maxPendingOffers = 100;
    });
    f.inv.machines.add('52:54:00:ee:00:03', {});
    const c = f.config;
    const h = new DhcpHandler({
      serverId: c.serverAddress, subnet: c.dhcp.subnet, leaseTime: c.dhcp.leaseTime, pool: c.dhcp.pool, unknownClients: 'pool',
      relays: [], backend: new InventoryDhcpBackend(f.inv, c), maxPendingOffers: c.dhcp.maxPendingOffers,
    });
    const ctx = { receivedOn: 'interface' as const, now: Date.now() };
    let offers = 0;
    let full = 0;
    for (let i = 0; i < 1000; i++) {
      const mac = `02:00:5a:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      // Half of them ask for an address of their own (option 50): no way around the cap either.
      const out = h.handleDetailed(makeRequest({ mac, type: 1, xid: i, ...(i % 2 ? { requestedIp: `10.77.9.${i % 250 + 1}` } : {}) }), ctx);
      if (out.result) offers++;
      else if (out.log.reason === 'offers-full') full++;
    }
    expect(offers).toBe(100);
    expect(full).toBe(900);
    // A MAC already holding an offer is offered it again; a registered machine takes an unregistered MAC's.
    expect(h.handle(makeRequest({ mac: '02:00:5a:00:00:00', type: 1 }), ctx)).not.toBeNull();
    expect(h.handle(makeRequest({ mac: '52:54:00:ee:00:03', type: 1 }), ctx)?.reply.yiaddr).toMatch(/^10\.77\./);
  });

  it('a flood of whole exchanges binds the pool, but not dhcp.registeredPool: registered machines still boot', () => {
    f = makeFixture((doc: any) => { doc.dhcp.registeredPool = { start: '10.77.0.200', end: '10.77.0.210' }; });
    const registered = ['52:54:00:ee:01:01', '52:54:00:ee:01:02', '52:54:00:ee:01:03'];
    for (const m of registered) f.inv.machines.add(m, {});
    const c = f.config;
    const h = new DhcpHandler({ ...dhcpPolicy(c), backend: new InventoryDhcpBackend(f.inv, c) });
    const ctx = { receivedOn: 'interface' as const, now: Date.now() };
    const server = c.serverAddress;
    const bound = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const mac = `02:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x5b].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      // Every tenth asks for a registered-pool address by name (option 50): it does not get it either.
      const offer = h.handle(makeRequest({ mac, type: 1, xid: i, ...(i % 10 === 0 ? { requestedIp: '10.77.0.205' } : {}) }), ctx);
      if (!offer) continue;
      const ack = h.handle(makeRequest({ mac, type: 3, xid: i, serverId: server, requestedIp: offer.reply.yiaddr }), ctx);
      if (ack && messageType(ack.reply) === 5) bound.add(ack.reply.yiaddr);
    }
    expect(bound.size).toBe(51); // the whole pool, bound
    for (const ip of bound) expect(ip).toMatch(/^10\.77\.0\.(1[0-4]\d|150)$/);
    // A made-up MAC asking straight for a registered-pool address is not given it: silence for an
    // INIT-REBOOT we have no record of (RFC 2131 4.3.2), a NAK for a SELECTING naming us.
    expect(h.handle(makeRequest({ mac: '02:aa:bb:cc:dd:ee', type: 3, requestedIp: '10.77.0.201' }), ctx)).toBeNull();
    const grab = h.handle(makeRequest({ mac: '02:aa:bb:cc:dd:ee', type: 3, serverId: server, requestedIp: '10.77.0.201' }), ctx);
    expect(grab && messageType(grab.reply)).toBe(6);
    // Each registered machine completes its exchange, on an address of the registered pool.
    for (const m of registered) {
      const offer = h.handle(makeRequest({ mac: m, type: 1 }), ctx);
      expect(offer?.reply.yiaddr).toMatch(/^10\.77\.0\.2(0\d|10)$/);
      const ack = h.handle(makeRequest({ mac: m, type: 3, serverId: server, requestedIp: offer!.reply.yiaddr }), ctx);
      expect(ack && messageType(ack.reply)).toBe(5);
    }
  });
});
