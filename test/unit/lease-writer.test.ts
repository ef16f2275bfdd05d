/**
 * The lease writer thread (server/inventory/lease-writer.ts): the daemon's leases are stored
 * by a worker thread with its own connection, one transaction per batch, in the order handed
 * over; the DHCP server still sends an ACK only once its lease is on disk.
 */
import Database from 'better-sqlite3';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Inventory } from '../../server/inventory/index.js';
import type { LeaseRecord } from '../../server/inventory/index.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';
import { startDhcpServer } from '../../server/dhcp/server.js';
import { decodePacket, encodePacket } from '../../server/dhcp/packet.js';
import { messageType } from '../../server/dhcp/options.js';
import { silentLogger } from '../../server/log.js';
import { makeRequest } from '../helpers/dhcp-packets.js';
import { makeFixture } from '../helpers/fixture.js';

const lease = (mac: string, ipv4: string, over: Partial<LeaseRecord> = {}): LeaseRecord =>
  ({ mac, ipv4, hostname: null, state: 'bound', expiresAt: Date.now() + 3_600_000, ...over });
const mac = (i: number) => `52:54:00:31:00:${i.toString(16).padStart(2, '0')}`;

let dir: string | undefined;
let inv: Inventory | undefined;
afterEach(() => {
  inv?.close();
  inv = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function open(): { inv: Inventory; file: string } {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-lease-writer-'));
  inv = Inventory.open(dir, undefined, { leaseWriter: true });
  return { inv, file: join(dir, 'inventory.sqlite') };
}

/** What another connection (another process, after a crash) finds on disk. */
function onDisk(file: string): Array<{ mac: string; ipv4: string; state: string }> {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT mac, ipv4, state FROM leases ORDER BY mac').all() as Array<{ mac: string; ipv4: string; state: string }>;
  } finally {
    db.close();
  }
}

describe('lease writer thread', () => {
  it('stores staged leases off the main thread; reads see them meanwhile; one batch at a time, the rest merged', async () => {
    const { inv, file } = open();
    const writes: Array<Promise<void>> = [];
    for (let i = 1; i <= 50; i++) {
      inv.leases.stage(lease(mac(i), `10.31.0.${i}`));
      writes.push(inv.leases.storeStaged()!);
    }
    // Handed over, not stored yet: the overlay answers, the disk has nothing.
    expect(inv.leases.byMac(mac(7))?.ipv4).toBe('10.31.0.7');
    expect(onDisk(file)).toHaveLength(0);
    await Promise.all(writes);
    expect(onDisk(file)).toHaveLength(50);
    expect(inv.leases.pendingCount()).toBe(0);
    expect(inv.leases.byIp('10.31.0.50')?.mac).toBe(mac(50));
    // The first batch went at once; the 49 handed over while it was written went as one.
    expect(inv.leases.writer!.commits).toBe(2);
  });

  it('release and decline go the same ordered way: they land after the binding still being written', async () => {
    const { inv, file } = open();
    inv.leases.stage(lease(mac(1), '10.31.0.1'));
    const bound = inv.leases.storeStaged()!;
    inv.leases.release(mac(1));
    inv.leases.decline('10.31.0.2', mac(2), Date.now() + 600_000);
    expect(inv.leases.byMac(mac(1))?.state).toBe('released');
    await Promise.all([bound, inv.leases.storeStaged()]);
    expect(onDisk(file)).toEqual([
      { mac: mac(1), ipv4: '10.31.0.1', state: 'released' },
      { mac: mac(2), ipv4: '10.31.0.2', state: 'declined' },
    ]);
    // The calling thread's own writes would jump that order: refused, by name.
    expect(() => inv.leases.upsert(lease(mac(3), '10.31.0.3'))).toThrow(/Leases.upsert.*stage\(\) and storeStaged\(\)/);
  });

  it('a batch the disk refuses rejects and drops its staged leases; the next batch is stored', async () => {
    const { inv, file } = open();
    inv.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON leases WHEN NEW.mac = '${mac(9)}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END`);
    inv.leases.stage(lease(mac(8), '10.31.0.8'));
    inv.leases.stage(lease(mac(9), '10.31.0.9'));
    await expect(inv.leases.storeStaged()).rejects.toThrow(/lease write failed: refused by test/);
    // Neither is stored (one transaction) and neither may be claimed by an ACK.
    expect(onDisk(file)).toEqual([]);
    expect(inv.leases.byMac(mac(8))).toBeUndefined();
    inv.leases.stage(lease(mac(8), '10.31.0.8'));
    await inv.leases.storeStaged();
    expect(onDisk(file).map((l) => l.mac)).toEqual([mac(8)]);
  });

  it('a thread that dies mid-write fails that batch; the next write starts a new thread', async () => {
    const { inv, file } = open();
    inv.leases.stage(lease(mac(1), '10.31.0.1'));
    await inv.leases.storeStaged();
    inv.leases.stage(lease(mac(2), '10.31.0.2'));
    const lost = inv.leases.storeStaged()!;
    await (inv.leases.writer as unknown as { worker: Worker }).worker.terminate();
    await expect(lost).rejects.toThrow(/lease writer thread exited/);
    // The thread may have committed mac 2 before it died (its reply then never came): what the
    // server reads must be what the disk holds, never a staged lease the disk does not have.
    const stored = onDisk(file).some((l) => l.mac === mac(2));
    expect(inv.leases.byMac(mac(2)) !== undefined).toBe(stored);
    expect(inv.leases.pendingCount()).toBe(0);
    inv.leases.stage(lease(mac(3), '10.31.0.3'));
    await inv.leases.storeStaged();
    expect(onDisk(file).map((l) => l.mac)).toContain(mac(3));
  });
});

describe('lease writer thread: close', () => {
  it('waits for what was handed over, then stops the thread', async () => {
    const { inv, file } = open();
    inv.leases.stage(lease(mac(1), '10.31.0.1'));
    const first = inv.leases.storeStaged();
    inv.leases.stage(lease(mac(2), '10.31.0.2'));
    const second = inv.leases.storeStaged();
    const writer = inv.leases.writer!;
    await writer.close();
    expect(onDisk(file).map((l) => l.mac)).toEqual([mac(1), mac(2)]);
    await Promise.all([first, second]);
    expect(writer.busy()).toBe(false);
    expect((writer as unknown as { worker?: Worker }).worker).toBeUndefined();
  });
});

describe('DHCP server over the inventory with the writer thread', () => {
  const clients: Socket[] = [];
  afterEach(() => { for (const c of clients.splice(0)) c.close(); });

  it('an ACK arrives only when its lease is on disk, for every client of a burst', async () => {
    const f = makeFixture();
    try {
      inv = Inventory.open(f.config.dataDir, undefined, { leaseWriter: true });
      const file = join(f.config.dataDir, 'inventory.sqlite');
      const backend = new InventoryDhcpBackend(inv, f.config, { recordEvents: false });
      // A renewal's ACK goes to its ciaddr: a socket on each client's loopback address, one port for all.
      const bind = async (ip: string, port: number) => {
        const c = createSocket('udp4');
        clients.push(c);
        await new Promise<void>((r) => c.bind(port, ip, () => r()));
        return c.address().port;
      };
      const clientPort = await bind('127.0.1.1', 0);
      for (let i = 2; i <= 40; i++) await bind(`127.0.1.${i}`, clientPort);
      const server = await startDhcpServer({
        address: '127.0.0.1', port: 0, clientPort, serverId: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 },
        leaseTime: 3600, pool: { start: '127.0.1.1', end: '127.0.1.250' }, unknownClients: 'pool', backend, logger: silentLogger(),
      });
      const acked: Array<{ mac: string; onDisk: boolean }> = [];
      const onReply = (m: Buffer) => {
        const p = decodePacket(m);
        if (messageType(p) !== 5) return;
        const m2 = [...p.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
        acked.push({ mac: m2, onDisk: onDisk(file).some((l) => l.mac === m2) });
      };
      for (const c of clients) c.on('message', onReply);
      // 40 registered machines renew (REQUEST from ciaddr, unicast back) in one burst.
      for (let i = 1; i <= 40; i++) inv.machines.add(mac(i), { ipv4: `127.0.1.${i}`, hostname: `n${i}` });
      for (let i = 1; i <= 40; i++) {
        clients[0]!.send(encodePacket(makeRequest({ mac: mac(i), type: 3, xid: i, ciaddr: `127.0.1.${i}` })), server.address().port, '127.0.0.1');
      }
      for (let k = 0; k < 300 && acked.length < 40; k++) await new Promise((r) => setTimeout(r, 10));
      await server.close();
      expect(acked).toHaveLength(40);
      expect(acked.filter((a) => !a.onDisk)).toEqual([]);
      expect(backend.sightingErrors).toBe(0);
    } finally {
      f.cleanup();
    }
  });
});
