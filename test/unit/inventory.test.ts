import { describe, it, expect, afterEach } from 'vitest';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { Inventory, InventoryError } from '../../server/inventory/index.js';
import { normalizeMac, pxelinuxMacName } from '../../server/inventory/mac.js';
import { networkPolicy } from '../../server/daemon/network.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let f: Fixture;
afterEach(() => f?.cleanup());

function refusal(fn: () => unknown): InventoryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InventoryError);
    return e as InventoryError;
  }
  throw new Error('accepted');
}

describe('MAC normalisation', () => {
  it.each(['52:54:00:AB:cd:10', '52-54-00-ab-cd-10', '5254.00ab.cd10', '525400abcd10', ' 52:54:00:ab:cd:10 '])('accepts %s', (s) => {
    expect(normalizeMac(s)).toBe('52:54:00:ab:cd:10');
  });
  it.each(['00:00:00:00:00:00', '01:00:5e:00:00:01', '52:54:00:ab:cd', '52:54-00:ab:cd:10', 'zz:54:00:ab:cd:10', ''])('refuses %s', (s) => {
    expect(() => normalizeMac(s)).toThrow(/mac/);
  });
  it('names pxelinux files', () => {
    expect(pxelinuxMacName('52:54:00:ab:cd:10')).toBe('01-52-54-00-ab-cd-10');
  });
});

describe('inventory', () => {
  it('records its migrations and runs in WAL mode with foreign keys', () => {
    f = makeFixture();
    expect(f.inv.db.prepare('SELECT version FROM schema_migrations').pluck().all()).toEqual([1, 2, 3, 4]);
    expect(f.inv.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(f.inv.db.pragma('foreign_keys', { simple: true })).toBe(1);
  });

  it('registers machines and refuses conflicts naming the holder', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add('52-54-00-77-00-10', { hostname: 'Node01', ipv4: '10.77.0.10', root: 'lab' });
    const m = f.inv.machines.get('52:54:00:77:00:10')!;
    expect(m).toMatchObject({ hostname: 'node01', ipv4: '10.77.0.10', root: 'lab' });
    expect(refusal(() => f.inv.machines.add('5254.0077.0010', {}))).toMatchObject({ code: 'conflict', field: 'mac' });
    const host = refusal(() => f.inv.machines.add('52:54:00:77:00:11', { hostname: 'NODE01' }));
    expect(host).toMatchObject({ code: 'conflict', field: 'hostname' });
    expect(host.message).toContain('52:54:00:77:00:10');
    expect(refusal(() => f.inv.machines.add('52:54:00:77:00:11', { ipv4: '10.77.0.10' }))).toMatchObject({ code: 'conflict', field: 'ipv4' });
    expect(refusal(() => f.inv.machines.add('52:54:00:77:00:11', { root: 'nope' }))).toMatchObject({ code: 'unknown_reference', field: 'root' });
    expect(f.inv.machines.list()).toHaveLength(1);
  });

  it.each([
    ['10.77.0.0', /network or broadcast/], ['10.77.0.255', /network or broadcast/], ['10.77.0.1', /server's own/],
    ['10.77.0.120', /dynamic pool/], ['10.78.0.5', /outside the served subnets/], ['10.77.0', /not an IPv4/],
  ])('refuses the address %s', (ip, why) => {
    f = makeFixture();
    const e = refusal(() => f.inv.machines.add('52:54:00:77:00:12', { ipv4: ip }));
    expect(e.field).toBe('ipv4');
    expect(e.message).toMatch(why);
  });

  it.each(['-node', 'node_1', 'a'.repeat(64), 'no de'])('refuses the host name %j', (h) => {
    f = makeFixture();
    expect(refusal(() => f.inv.machines.add('52:54:00:77:00:12', { hostname: h })).field).toBe('hostname');
  });

  it('keeps data across reopen and refuses to delete a root in use', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add('52:54:00:77:00:10', { root: 'lab' });
    f.inv.leases.upsert({ mac: '52:54:00:77:00:10', ipv4: '10.77.0.100', hostname: null, state: 'bound', expiresAt: Date.now() + 60_000 });
    expect(refusal(() => f.inv.roots.remove('lab'))).toMatchObject({ code: 'in_use' });
    f.inv.close();
    const again = Inventory.open(f.config.dataDir, networkPolicy(f.config));
    expect(again.machines.get('52:54:00:77:00:10')?.root).toBe('lab');
    expect(again.leases.byMac('52:54:00:77:00:10')?.ipv4).toBe('10.77.0.100');
    f.inv = again;
  });

  it('gives an address one lease holder: a new binding replaces a stale one', () => {
    f = makeFixture();
    const t = Date.now() + 60_000;
    f.inv.leases.upsert({ mac: 'aa:00:00:00:00:01', ipv4: '10.77.0.100', hostname: null, state: 'released', expiresAt: t });
    f.inv.leases.upsert({ mac: 'aa:00:00:00:00:02', ipv4: '10.77.0.100', hostname: null, state: 'bound', expiresAt: t });
    expect(f.inv.leases.byIp('10.77.0.100')?.mac).toBe('aa:00:00:00:00:02');
    expect(f.inv.leases.byMac('aa:00:00:00:00:01')).toBeUndefined();
  });

  it('stores a release and a decline durably, as the DHCP server writes them', () => {
    f = makeFixture();
    const before = Date.now();
    f.inv.leases.upsert({ mac: 'aa:00:00:00:00:01', ipv4: '10.77.0.100', hostname: null, state: 'bound', expiresAt: before + 60_000 });
    f.inv.leases.release('aa:00:00:00:00:01');
    f.inv.leases.decline('10.77.0.101', 'aa:00:00:00:00:02', before + 600_000);
    f.inv.close();
    const again = Inventory.open(f.config.dataDir, networkPolicy(f.config));
    f.inv = again;
    const released = again.leases.byMac('aa:00:00:00:00:01');
    expect(released).toMatchObject({ ipv4: '10.77.0.100', state: 'released' });
    expect(released!.expiresAt).toBeGreaterThanOrEqual(before);
    expect(released!.expiresAt).toBeLessThanOrEqual(Date.now());
    expect(again.leases.byIp('10.77.0.101')).toMatchObject({ mac: 'aa:00:00:00:00:02', state: 'declined', expiresAt: before + 600_000 });
  });

  it('refuses a static address that a live dynamic lease holds', () => {
    f = makeFixture((d: any) => { d.dhcp.pool = { start: '10.77.0.200', end: '10.77.0.210' }; });
    f.inv.leases.upsert({ mac: 'aa:00:00:00:00:01', ipv4: '10.77.0.50', hostname: null, state: 'bound', expiresAt: Date.now() + 60_000 });
    expect(refusal(() => f.inv.machines.add('52:54:00:77:00:10', { ipv4: '10.77.0.50' })).message).toMatch(/leased to aa:00:00:00:00:01/);
  });

  it('groups: inheritance source, refuse deleting a group with machines', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.groups.put({ name: 'compute', root: 'lab', bootMode: 'local', loader: 'ipxe' });
    f.inv.machines.add('52:54:00:77:00:10', { group: 'compute' });
    expect(refusal(() => f.inv.groups.remove('compute')).code).toBe('in_use');
    expect(refusal(() => f.inv.groups.put({ name: 'x', bootFiles: { sparc: 'a' } as never })).field).toBe('bootFiles.sparc');
  });
});

describe('one maintenance machine per root', () => {
  it('refuses a second maintenance machine on a root (by machine or through a group), and one without an address', () => {
    f = makeFixture();
    f.inv.roots.put({ name: 'lab', arch: 'amd64', kernel: 'k@lab', initrd: 'i@lab', nfsPath: '/srv/sidereal/roots/lab/current' });
    f.inv.roots.put({ name: 'other', arch: 'amd64', kernel: 'k@other', initrd: 'i@other', nfsPath: '/srv/sidereal/roots/other/current' });
    f.inv.machines.add('52:54:00:77:00:10', { hostname: 'master', ipv4: '10.77.0.10', root: 'lab', bootMode: 'maintenance' });
    f.inv.machines.add('52:54:00:77:00:11', { hostname: 'n11', ipv4: '10.77.0.11', root: 'lab' });
    expect(() => f.inv.machines.update('52:54:00:77:00:11', { bootMode: 'maintenance' }))
      .toThrow(/root lab already has a maintenance machine, master \(52:54:00:77:00:10\)/);
    expect(f.inv.machines.get('52:54:00:77:00:11')!.bootMode).toBeNull(); // rolled back
    // Another root may have its own.
    f.inv.machines.add('52:54:00:77:00:12', { ipv4: '10.77.0.12', root: 'other', bootMode: 'maintenance' });
    // Through a group: n11 joins a maintenance group of root lab.
    f.inv.groups.put({ name: 'fixers', root: 'lab', bootMode: 'maintenance' });
    expect(() => f.inv.machines.update('52:54:00:77:00:11', { group: 'fixers', root: null })).toThrow(/already has a maintenance machine/);
    // Without a fixed address the read-write export has no one to go to.
    expect(() => f.inv.machines.add('52:54:00:77:00:13', { root: 'other', bootMode: 'maintenance' })).toThrow(/without a fixed ipv4/);
    f.inv.machines.update('52:54:00:77:00:10', { bootMode: 'root' });
    f.inv.machines.update('52:54:00:77:00:11', { bootMode: 'maintenance' });
    expect(f.inv.machines.get('52:54:00:77:00:11')!.bootMode).toBe('maintenance');
  });
});

describe('boot events queued by recordSoon', () => {
  it('are written together within moments, read back at once by list(), and kept by close()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidereal-events-'));
    try {
      const inv = Inventory.open(dir);
      inv.events.recordSoon('52:54:00:00:00:01', 'tftp', { file: 'pxelinux.0' });
      inv.events.recordSoon('52:54:00:00:00:01', 'tftp', { file: 'vmlinuz' });
      // list() flushes first: a reader in this process sees its own events at once
      expect(inv.events.list('52:54:00:00:00:01').map((e) => e.detail.file)).toEqual(['pxelinux.0', 'vmlinuz']);
      inv.events.recordSoon('52:54:00:00:00:02', 'http', { file: 'initrd.img' });
      // another connection sees it once the queue's short delay is over
      const other = Inventory.open(dir);
      await new Promise((r) => setTimeout(r, 100));
      expect(other.events.list('52:54:00:00:00:02')).toHaveLength(1);
      inv.events.recordSoon('52:54:00:00:00:03', 'http', { file: 'last' });
      inv.close();
      expect(other.events.list('52:54:00:00:00:03')).toHaveLength(1);
      other.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
