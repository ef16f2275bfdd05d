/**
 * Issue 6's DHCP latency work on the inventory side: the group commit's
 * fsync runs off the event loop (WalSync), and writes worth less than an
 * fsync (boot events) share the one connection without one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { WalSync } from '../../server/inventory/wal-sync.js';
import { openDb, withoutFsync } from '../../server/inventory/db.js';
import { Inventory } from '../../server/inventory/index.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';
import type { LeaseRecord } from '../../server/inventory/leases.js';

const lease = (mac: string, ipv4: string): LeaseRecord => ({ mac, ipv4, hostname: null, state: 'bound', expiresAt: Date.now() + 3_600_000 });

let f: Fixture | undefined;
const dirs: string[] = [];
afterEach(() => {
  f?.cleanup();
  f = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const synchronous = (inv: Inventory) => inv.db.pragma('synchronous', { simple: true });

describe('the group commit on a file', () => {
  it('commits at once (reads see the lease), returns a promise for the fsync, and leaves the connection FULL', async () => {
    f = makeFixture();
    const leases = f.inv.leases;
    leases.stage(lease('52:54:00:00:01:01', '10.77.0.100'));
    const done = leases.flush();
    expect(done).toBeInstanceOf(Promise);
    expect(leases.pendingCount()).toBe(0);
    // In the table before the fsync returns: another connection (the CLI) sees it too.
    const other = openDb(f.inv.db.name, { migrate: false });
    try {
      expect(other.prepare('SELECT ipv4 FROM leases WHERE mac = ?').pluck().get('52:54:00:00:01:01')).toBe('10.77.0.100');
    } finally {
      other.close();
    }
    expect(synchronous(f.inv)).toBe(2);
    await done;
    expect(synchronous(f.inv)).toBe(2);
  });

  it('nothing staged: no transaction, no promise', () => {
    f = makeFixture();
    expect(f.inv.leases.flush()).toBeUndefined();
  });

  it('a failed batch throws before any fsync and leaves the connection FULL', () => {
    f = makeFixture();
    f.inv.leases.stage(lease('52:54:00:00:01:02', '10.77.0.101'));
    expect(() => f!.inv.leases.flush(() => { throw new Error('disk full'); })).toThrow('disk full');
    expect(synchronous(f.inv)).toBe(2);
    expect(f.inv.leases.list()).toHaveLength(0);
  });

  it('waitForDisk false (dhcp.ackAfterFsync false): committed, no promise, the fsync started all the same; a failed one is counted and the next flush syncs again', async () => {
    f = makeFixture();
    const leases = f.inv.leases;
    const failing = vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: Error | null) => void) => {
      setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
    }) as unknown as typeof fs.fdatasync);
    try {
      const told: unknown[] = [];
      leases.stage(lease('52:54:00:00:01:05', '10.77.0.104'));
      expect(leases.flush(undefined, { waitForDisk: false, onSyncError: (e) => told.push(e) })).toBeUndefined();
      expect(leases.list().map((l) => l.mac)).toEqual(['52:54:00:00:01:05']);
      await vi.waitFor(() => expect(leases.syncErrors).toBe(1));
      expect(failing).toHaveBeenCalledTimes(1);
      expect(told).toMatchObject([{ code: 'EIO' }]);
    } finally {
      failing.mockRestore();
    }
    const passing = vi.spyOn(fs, 'fdatasync');
    try {
      leases.stage(lease('52:54:00:00:01:06', '10.77.0.105'));
      expect(leases.flush(undefined, { waitForDisk: false })).toBeUndefined();
      await vi.waitFor(() => expect(passing).toHaveBeenCalledTimes(1));
      // Let the fsync's callback run: it must not count as an error.
      await new Promise((r) => setTimeout(r, 20));
      expect(leases.syncErrors).toBe(1);
    } finally {
      passing.mockRestore();
    }
  });

  it('the DHCP backend waits for the fsync by default, and not with dhcp.ackAfterFsync false', async () => {
    f = makeFixture();
    const waits = new InventoryDhcpBackend(f.inv, f.config, { recordEvents: false });
    f.inv.leases.stage(lease('52:54:00:00:01:07', '10.77.0.106'));
    const done = waits.flush();
    expect(done).toBeInstanceOf(Promise);
    await done;
    const config = { ...f.config, dhcp: { ...f.config.dhcp, ackAfterFsync: false } };
    const early = new InventoryDhcpBackend(f.inv, config, { recordEvents: false });
    f.inv.leases.stage(lease('52:54:00:00:01:08', '10.77.0.107'));
    expect(early.flush()).toBeUndefined();
    expect(f.inv.leases.list()).toHaveLength(2);
  });

  it('in memory there is nothing to fsync: flush is synchronous', () => {
    const inv = Inventory.open(':memory:');
    try {
      inv.leases.stage(lease('52:54:00:00:01:03', '10.77.0.102'));
      expect(inv.leases.flush()).toBeUndefined();
      expect(inv.leases.list()).toHaveLength(1);
    } finally {
      inv.close();
    }
  });
});

describe('WalSync', () => {
  function walFile(): { db: ReturnType<typeof openDb>; wal: string } {
    const dir = mkdtempSync(join(tmpdir(), 'sidereal-walsync-'));
    dirs.push(dir);
    const db = openDb(join(dir, 'x.sqlite'), { migrate: false });
    db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)');
    return { db, wal: join(dir, 'x.sqlite-wal') };
  }

  it('calls made while an fdatasync runs share the next one: many commits, few syncs', async () => {
    const { db, wal } = walFile();
    const ws = new WalSync(wal);
    const ins = db.prepare('INSERT INTO t (b) VALUES (?)');
    const waits: Array<Promise<void>> = [];
    for (let i = 0; i < 50; i++) {
      ins.run(`row ${i}`);
      waits.push(ws.sync());
    }
    await Promise.all(waits);
    // The first call starts one; the 49 made while it ran wait for one more.
    expect(ws.syncs).toBe(2);
    // After both, a new call starts a fresh one.
    await ws.sync();
    expect(ws.syncs).toBe(3);
    await ws.close();
    db.close();
  });

  it('rejects when the WAL cannot be opened, and opens it again on the next call', async () => {
    const { db, wal } = walFile();
    const missing = new WalSync(`${wal}-not-there`);
    await expect(missing.sync()).rejects.toThrow(/ENOENT/);
    await expect(missing.sync()).rejects.toThrow(/ENOENT/);
    expect(missing.syncs).toBe(2);
    await missing.close();
    expect(existsSync(wal)).toBe(true);
    expect(statSync(wal).size).toBeGreaterThan(0);
    db.close();
  });
});

describe('withoutFsync', () => {
  it('commits with NORMAL and puts FULL back, even when the write throws', () => {
    f = makeFixture();
    const db = f.inv.db;
    let inside: unknown;
    withoutFsync(db, () => { inside = db.pragma('synchronous', { simple: true }); });
    expect(inside).toBe(1);
    expect(synchronous(f.inv)).toBe(2);
    expect(() => withoutFsync(db, () => { throw new Error('boom'); })).toThrow('boom');
    expect(synchronous(f.inv)).toBe(2);
  });

  it('inside an open transaction it changes nothing: the outer commit decides', () => {
    f = makeFixture();
    const db = f.inv.db;
    let inside: unknown;
    db.transaction(() => withoutFsync(db, () => { inside = db.pragma('synchronous', { simple: true }); }))();
    expect(inside).toBe(2);
  });

  it('boot events are written on the inventory connection, which stays FULL', () => {
    f = makeFixture();
    f.inv.events.recordSoon('52:54:00:00:01:04', 'dhcp', { type: 'DISCOVER' });
    f.inv.events.record('52:54:00:00:01:04', 'booted', {});
    expect(f.inv.events.list('52:54:00:00:01:04').map((e) => e.stage).sort()).toEqual(['booted', 'dhcp']);
    expect(synchronous(f.inv)).toBe(2);
  });
});
