/**
 * Issue 6's DHCP performance work: staged (write-behind) leases and their
 * group commit, the pool cursor, and the server never sending an ACK before
 * its lease is stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { makeRequest } from '../helpers/dhcp-packets.js';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { MemoryBackend, MemoryLeaseStore } from '../../server/dhcp/memory-backend.js';
import type { LeaseRecord } from '../../server/dhcp/backend.js';
import { startDhcpServer } from '../../server/dhcp/server.js';
import { decodePacket, encodePacket } from '../../server/dhcp/packet.js';
import { messageType } from '../../server/dhcp/options.js';
import { silentLogger } from '../../server/log.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';

const T0 = 1_700_000_000_000;
const lease = (mac: string, ipv4: string, over: Partial<LeaseRecord> = {}): LeaseRecord =>
  ({ mac, ipv4, hostname: null, state: 'bound', expiresAt: T0 + 3_600_000, ...over });

let f: Fixture | undefined;
afterEach(() => { f?.cleanup(); f = undefined; });

describe('staged leases (inventory)', () => {
  it('reads see a staged lease at once; flush stores it in one go', () => {
    f = makeFixture();
    const leases = f.inv.leases;
    leases.stage(lease('52:54:00:00:00:01', '10.77.0.100'));
    leases.stage(lease('52:54:00:00:00:02', '10.77.0.101'));
    expect(leases.byMac('52:54:00:00:00:01')?.ipv4).toBe('10.77.0.100');
    expect(leases.byIp('10.77.0.101')?.mac).toBe('52:54:00:00:00:02');
    expect(leases.list()).toHaveLength(0);          // not stored yet
    leases.flush();
    expect(leases.pendingCount()).toBe(0);
    expect(leases.list().map((l) => l.ipv4)).toEqual(['10.77.0.100', '10.77.0.101']);
  });

  it('a staged move hides the stored record it will replace, by address and by MAC', () => {
    f = makeFixture();
    const leases = f.inv.leases;
    leases.upsert(lease('52:54:00:00:00:01', '10.77.0.100'));
    leases.upsert(lease('52:54:00:00:00:02', '10.77.0.101'));
    // MAC 1 moves to .102; MAC 3 takes MAC 2's address (the store deletes MAC 2's record then).
    leases.stage(lease('52:54:00:00:00:01', '10.77.0.102'));
    leases.stage(lease('52:54:00:00:00:03', '10.77.0.101'));
    expect(leases.byIp('10.77.0.100')).toBeUndefined();
    expect(leases.byMac('52:54:00:00:00:02')).toBeUndefined();
    expect(leases.byIp('10.77.0.101')?.mac).toBe('52:54:00:00:00:03');
    const seen = (['100', '101', '102'] as const).map((n) => leases.byIp(`10.77.0.${n}`)?.mac ?? null);
    leases.flush();
    expect((['100', '101', '102'] as const).map((n) => leases.byIp(`10.77.0.${n}`)?.mac ?? null)).toEqual(seen);
  });

  it('a failed flush throws and drops what was staged: nothing may claim it', () => {
    f = makeFixture();
    const leases = f.inv.leases;
    leases.stage(lease('52:54:00:00:00:01', '10.77.0.100'));
    expect(() => leases.flush(() => { throw new Error('disk full'); })).toThrow('disk full');
    expect(leases.byMac('52:54:00:00:00:01')).toBeUndefined();
    expect(leases.list()).toHaveLength(0);
  });

  it('the inventory backend reads the machine row once per packet and batches its writes until flush (boot events: the inventory queue)', () => {
    f = makeFixture();
    const c = f.config;
    const backend = new InventoryDhcpBackend(f.inv, c);
    const h = new DhcpHandler({
      serverId: c.serverAddress, subnet: c.dhcp.subnet, router: c.dhcp.router, leaseTime: 3600, pool: c.dhcp.pool,
      unknownClients: 'pool', backend,
    });
    let reads = 0;
    const get = f.inv.machines.get.bind(f.inv.machines);
    f.inv.machines.get = (mac: string) => { reads++; return get(mac); };
    const mac = '52:54:00:00:00:09';
    const ctx = { receivedOn: 'interface' as const, now: Date.now(), deferLeaseWrites: true };
    const offer = h.handle(makeRequest({ mac, type: 1 }), ctx)!;
    expect(reads).toBe(1);
    const ack = h.handle(makeRequest({ mac, type: 3, xid: 2, serverId: c.serverAddress, requestedIp: offer.reply.yiaddr }), ctx)!;
    expect(ack.afterFlush).toBe(true);
    expect(f.inv.leases.list()).toHaveLength(0);
    expect(f.inv.discovered.get(mac)).toBeUndefined();
    backend.flush();
    expect(f.inv.leases.list().map((l) => l.mac)).toEqual([mac]);
    expect(f.inv.events.list(mac).map((e) => e.detail.type)).toEqual(['DISCOVER', 'REQUEST']);
    expect(f.inv.discovered.get(mac)?.seenCount).toBe(1);
  });
});

describe('pool cursor', () => {
  const handler = (backend: MemoryBackend, pool = { start: '10.77.0.10', end: '10.77.39.250' }) => new DhcpHandler({
    serverId: '10.77.0.1', subnet: { network: '10.77.0.0', prefix: 16 }, leaseTime: 3600, pool, unknownClients: 'pool', backend,
  });
  const macOf = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const bind = (h: DhcpHandler, mac: string, now = T0) => {
    const o = h.handle(makeRequest({ mac, type: 1 }), { receivedOn: 'interface', now })!;
    const a = h.handle(makeRequest({ mac, type: 3, serverId: '10.77.0.1', requestedIp: o.reply.yiaddr }), { receivedOn: 'interface', now })!;
    expect(messageType(a.reply)).toBe(5);
    return a.reply.yiaddr;
  };
  /** A handler whose backend counts reservation lookups: one per address the allocator looks at. */
  const countingLookups = () => {
    const backend = new MemoryBackend({ server: '10.77.0.1' });
    const lookups = { n: 0 };
    const reservedBy = backend.reservedBy.bind(backend);
    backend.reservedBy = (ip: string) => { lookups.n++; return reservedBy(ip); };
    return { backend, lookups, h: handler(backend) };
  };

  it('10,000 new clients do not walk the pool from its start each time', () => {
    const { backend, lookups, h } = countingLookups();
    const ips = new Set<string>();
    for (let i = 0; i < 10_000; i++) ips.add(bind(h, macOf(i)));
    expect(ips.size).toBe(10_000);
    expect(lookups.n).toBeLessThan(10_000 * 4);   // a walk from the start would be ~50 million
  });

  it('with 32 exchanges in flight, ACKs do not send the next scan back over the addresses just leased', () => {
    const { backend, lookups, h } = countingLookups();
    const ctx = { receivedOn: 'interface' as const, now: T0 };
    const ips = new Set<string>();
    for (let round = 0; round < 100; round++) {
      const macs = Array.from({ length: 32 }, (_, k) => macOf(round * 32 + k));
      const offers = macs.map((mac) => h.handle(makeRequest({ mac, type: 1 }), ctx)!.reply.yiaddr);
      macs.forEach((mac, k) => {
        const a = h.handle(makeRequest({ mac, type: 3, serverId: '10.77.0.1', requestedIp: offers[k] }), ctx)!;
        ips.add(a.reply.yiaddr);
      });
    }
    expect(ips.size).toBe(3200);
    expect(lookups.n).toBeLessThan(3200 * 4);
  });

  it('a client repeating its DISCOVER does not send the next scan back to its offer', () => {
    const { backend, lookups, h } = countingLookups();
    const ctx = { receivedOn: 'interface' as const, now: T0 };
    const first = h.handle(makeRequest({ mac: macOf(0), type: 1 }), ctx)!.reply.yiaddr;
    for (let i = 1; i <= 2000; i++) h.handle(makeRequest({ mac: macOf(i), type: 1 }), ctx);
    lookups.n = 0;
    expect(h.handle(makeRequest({ mac: macOf(0), type: 1 }), ctx)!.reply.yiaddr).toBe(first);
    h.handle(makeRequest({ mac: macOf(5000), type: 1 }), ctx);
    expect(lookups.n).toBeLessThan(10);
  });

  it('still gives the lowest free address: a released lease, an expired offer, a dropped reservation', () => {
    const backend = new MemoryBackend({ server: '10.77.0.1', reservations: new Map([['52:54:00:aa:00:01', { ipv4: '10.77.0.12', hostname: 'held' }]]) });
    const h = handler(backend);
    const a = bind(h, macOf(1));
    const b = bind(h, macOf(2));
    expect([a, b]).toEqual(['10.77.0.10', '10.77.0.11']);
    expect(bind(h, macOf(3))).toBe('10.77.0.13');          // .12 is reserved
    // RELEASE of .10: the next new client gets it back
    h.handle(makeRequest({ mac: macOf(1), type: 7, ciaddr: a }), { receivedOn: 'interface', now: T0 });
    expect(bind(h, macOf(4))).toBe('10.77.0.10');
    // an offer that nobody requests holds .14 until it expires
    const offered = h.handle(makeRequest({ mac: macOf(5), type: 1 }), { receivedOn: 'interface', now: T0 })!.reply.yiaddr;
    expect(offered).toBe('10.77.0.14');
    expect(bind(h, macOf(6))).toBe('10.77.0.15');
    expect(bind(h, macOf(7), T0 + 61_000)).toBe('10.77.0.14');
    // the reservation goes: its address is the lowest free one again
    backend.reservations.delete('52:54:00:aa:00:01');
    expect(bind(h, macOf(8), T0 + 61_000)).toBe('10.77.0.12');
    // a lease that expires frees its address for others
    expect(bind(h, macOf(9), T0 + 3_600_000 + 1)).toBe('10.77.0.10');
  });
});

describe('group commit in the server', () => {
  let client: Socket | undefined;
  afterEach(() => { client?.close(); client = undefined; });

  /** A memory backend whose leases are staged and stored only when the test lets flush() finish. */
  function deferredBackend(fail = false) {
    const store = new MemoryLeaseStore();
    const staged: LeaseRecord[] = [];
    const gates: Array<() => void> = [];
    const leases = Object.assign(store, { stage: (l: LeaseRecord) => { staged.push(l); } });
    const backend = new MemoryBackend({ server: '127.0.0.1', leases, reservations: new Map([['52:54:00:77:00:01', { ipv4: '127.0.0.5', hostname: 'n1' }]]) });
    const flush = () => {
      const batch = staged.splice(0);
      if (batch.length === 0) return;
      return new Promise<void>((resolve, reject) => gates.push(() => {
        if (fail) { reject(new Error('disk gone')); return; }
        for (const l of batch) store.upsert(l);
        resolve();
      }));
    };
    return Object.assign(backend, { flush, gates, store });
  }

  async function exchange(fail: boolean) {
    const backend = deferredBackend(fail);
    client = createSocket('udp4');
    await new Promise<void>((r) => client!.bind(0, '127.0.0.5', () => r()));
    const port = client.address().port;
    const server = await startDhcpServer({
      address: '127.0.0.1', port: 0, clientPort: port, serverId: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 },
      leaseTime: 3600, unknownClients: 'pool', backend, logger: silentLogger(),
    });
    const got: number[] = [];
    client.on('message', (m) => got.push(messageType(decodePacket(m))!));
    // RENEWING: unicast from ciaddr, the ACK goes back to ciaddr:clientPort.
    client.send(encodePacket(makeRequest({ mac: '52:54:00:77:00:01', type: 3, ciaddr: '127.0.0.5' })), server.address().port, '127.0.0.1');
    const wait = async (pred: () => boolean) => { for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 10)); };
    await wait(() => backend.gates.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    const before = { got: [...got], stored: backend.store.byMac('52:54:00:77:00:01') };
    backend.gates.shift()!();
    await wait(() => got.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    const stats = { ...server.stats };
    await server.close();
    return { before, got, stats, stored: backend.store.byMac('52:54:00:77:00:01') };
  }

  it('holds the ACK until the lease is stored, then sends it', async () => {
    const r = await exchange(false);
    expect(r.before.got).toEqual([]);
    expect(r.before.stored).toBeUndefined();
    expect(r.got).toEqual([5]);
    expect(r.stored?.ipv4).toBe('127.0.0.5');
  });

  it('never sends the ACK when the lease could not be stored', async () => {
    const r = await exchange(true);
    expect(r.got).toEqual([]);
    expect(r.stored).toBeUndefined();
    expect(r.stats.errors).toBe(1);
    expect(r.stats.replied).toBe(0);
  });
});
