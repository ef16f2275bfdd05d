import { describe, it, expect, afterEach } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { networkPolicy } from '../../server/daemon/network.js';
import { InventoryError } from '../../server/inventory/index.js';
import {
  planImport, applyImport, prepareImport, describeImport, parseImport, ImportApplyError, type ImportRecord,
} from '../../server/import/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/import', name), 'utf8');

let f: Fixture;
afterEach(() => f?.cleanup());

/** The lab inventory with a root, a group and two registered machines. */
function lab(): Fixture {
  f = makeFixture();
  addLabRoot(f);
  f.inv.groups.put({ name: 'compute' });
  f.inv.machines.add('52:54:00:00:00:07', { hostname: 'node07', ipv4: '10.77.0.7' });
  f.inv.machines.add('52:54:00:00:00:08', { hostname: 'node08', ipv4: '10.77.0.8', group: 'compute' });
  return f;
}
const plan = (records: ImportRecord[], opts: { group?: string; root?: string } = {}) =>
  planImport(f.inv, records, { network: networkPolicy(f.config), ...opts });

describe('planImport', () => {
  it('sorts records into add, change, unchanged and refuse, with reasons the inventory would give', () => {
    lab();
    f.inv.leases.upsert({ mac: '52:54:00:aa:aa:aa', ipv4: '10.77.0.60', hostname: null, state: 'bound', expiresAt: Date.now() + 60_000 });
    const p = plan([
      { line: 1, mac: '52-54-00-77-00-10', hostname: 'node10', ipv4: '10.77.0.10', root: 'lab', note: 'kept' },
      { line: 2, mac: 'zz:54:00:77:00:11', ipv4: '10.77.0.11' },
      { line: 3, mac: '01:00:5e:00:00:01', ipv4: '10.77.0.12' },
      { line: 4, mac: '52:54:00:77:00:13', ipv4: '10.77.0.120' },
      { line: 5, mac: '52:54:00:77:00:14', ipv4: '10.78.0.5' },
      { line: 6, mac: '525400770010', hostname: 'node10b' },
      { line: 7, mac: '52:54:00:77:00:16', ipv4: '10.77.0.10' },
      { line: 8, mac: '52:54:00:77:00:17', hostname: 'NODE10' },
      { line: 9, mac: '52:54:00:77:00:18', ipv4: '10.77.0.7' },
      { line: 10, mac: '52:54:00:77:00:19', root: 'nope' },
      { line: 11, mac: '52:54:00:00:00:08', hostname: 'node08', ipv4: '10.77.0.18' },
      { line: 12, mac: '52:54:00:00:00:07', hostname: 'node07', ipv4: '10.77.0.7' },
      { line: 13, mac: '52:54:00:77:00:20', hostname: 'node20', ipv4: '10.77.0.8' },
      { line: 14, mac: '52:54:00:77:00:21', ipv4: '10.77.0.60' },
      { line: 15, mac: '52:54:00:77:00:22', group: 'nope', bootMode: 'disk' },
      { line: 16, mac: 'id:01:02', refused: { field: 'mac', reason: 'a client id' } },
    ]);
    expect(p.add).toEqual([
      { line: 1, mac: '52:54:00:77:00:10', input: { hostname: 'node10', ipv4: '10.77.0.10', root: 'lab' }, note: 'kept',
        diff: [{ field: 'hostname', before: null, after: 'node10' }, { field: 'ipv4', before: null, after: '10.77.0.10' }, { field: 'root', before: null, after: 'lab' }] },
      // 10.77.0.8 is free once line 11 has moved node08 away: the apply runs in file order too.
      { line: 13, mac: '52:54:00:77:00:20', input: { hostname: 'node20', ipv4: '10.77.0.8' },
        diff: [{ field: 'hostname', before: null, after: 'node20' }, { field: 'ipv4', before: null, after: '10.77.0.8' }] },
    ]);
    expect(p.change).toEqual([
      { line: 11, mac: '52:54:00:00:00:08', input: { ipv4: '10.77.0.18' }, diff: [{ field: 'ipv4', before: '10.77.0.8', after: '10.77.0.18' }] },
    ]);
    expect(p.unchanged.map((u) => [u.line, u.mac])).toEqual([[12, '52:54:00:00:00:07']]);
    expect(p.refuse).toEqual([
      { line: 2, mac: 'zz:54:00:77:00:11', field: 'mac', reason: expect.stringMatching(/is not a MAC address/) },
      { line: 3, mac: '01:00:5e:00:00:01', field: 'mac', reason: '"01:00:5e:00:00:01" is a multicast MAC, not a network card' },
      { line: 4, mac: '52:54:00:77:00:13', field: 'ipv4', reason: '10.77.0.120 is inside the dynamic pool 10.77.0.100-10.77.0.150; pick a static address outside it' },
      { line: 5, mac: '52:54:00:77:00:14', field: 'ipv4', reason: '10.78.0.5 is outside the served subnets (10.77.0.0/24)' },
      { line: 6, mac: '52:54:00:77:00:10', field: 'mac', reason: '52:54:00:77:00:10 appears again: line 1 already imports it' },
      { line: 7, mac: '52:54:00:77:00:16', field: 'ipv4', reason: '10.77.0.10 is also given to 52:54:00:77:00:10 by line 1; the first line wins' },
      { line: 8, mac: '52:54:00:77:00:17', field: 'hostname', reason: 'node10 is also given to 52:54:00:77:00:10 by line 1; the first line wins' },
      { line: 9, mac: '52:54:00:77:00:18', field: 'ipv4', reason: '10.77.0.7 is held by node07 (52:54:00:00:00:07)' },
      { line: 10, mac: '52:54:00:77:00:19', field: 'root', reason: 'no root named nope' },
      { line: 14, mac: '52:54:00:77:00:21', field: 'ipv4', reason: '10.77.0.60 is leased to 52:54:00:aa:aa:aa until its lease ends' },
      { line: 15, mac: '52:54:00:77:00:22', field: 'bootMode', reason: '"disk" must be root, maintenance or local' },
      { line: 15, mac: '52:54:00:77:00:22', field: 'group', reason: 'no group named nope' },
      { line: 16, mac: 'id:01:02', field: 'mac', reason: 'a client id' },
    ]);
  });

  it('says when the holder of a value is moved only by a later line', () => {
    lab();
    const p = plan([
      { line: 3, mac: '52:54:00:77:00:20', ipv4: '10.77.0.8' },
      { line: 9, mac: '52:54:00:00:00:08', ipv4: '10.77.0.18' },
    ]);
    expect(p.refuse).toEqual([{ line: 3, mac: '52:54:00:77:00:20', field: 'ipv4',
      reason: '10.77.0.8 is held by node08 (52:54:00:00:00:08); line 9 moves that machine off it, but after this line: put line 9 first' }]);
    expect(p.change.map((c) => c.line)).toEqual([9]);
  });

  it('applies the default group and root to new machines and to machines that have none', () => {
    lab();
    const p = plan([
      { line: 1, mac: '52:54:00:77:00:30' },
      { line: 2, mac: '52:54:00:00:00:08' },
      { line: 3, mac: '52:54:00:00:00:07' },
      { line: 4, mac: '52:54:00:77:00:31', root: 'lab', group: 'compute' },
    ], { group: 'compute', root: 'lab' });
    expect(p.add.map((a) => a.input)).toEqual([{ group: 'compute', root: 'lab' }, { group: 'compute', root: 'lab' }]);
    expect(p.change.map((c) => [c.line, c.input])).toEqual([[2, { root: 'lab' }], [3, { group: 'compute', root: 'lab' }]]);
    expect(() => plan([], { group: 'nope' })).toThrow(new InventoryError('unknown_reference', 'group', 'no group named nope'));
  });
});

describe('applyImport', () => {
  it('lands every add and change in one go, audited, and a second run changes nothing', () => {
    lab();
    const prepared = prepareImport(f.inv, fixture('machines.csv'), { network: networkPolicy(f.config), filename: 'machines.csv' });
    expect(prepared.format).toBe('csv');
    expect(prepared.plan.add.map((a) => a.mac)).toEqual(['52:54:00:77:00:40', '52:54:00:77:00:41', '52:54:00:77:00:43']);
    expect(prepared.plan.refuse).toEqual([{ line: 4, mac: '52:54:00:77:00:42', field: 'kernelArgs', reason: 'must be one line of at most 2048 characters' }]);
    expect(prepared.problems).toEqual([{ line: 8, message: '2 fields where the header has 7' }]);

    const auditBefore = f.inv.audit.list({ limit: 100 }).length;
    const result = applyImport(f.inv, prepared.plan, { actor: 'cli:test' });
    expect(result.added.map((m) => m.hostname)).toEqual(['node40', 'node41', 'node43']);
    expect(f.inv.machines.get('52:54:00:77:00:40')).toMatchObject({ root: 'lab', bootMode: 'root', kernelArgs: 'console=ttyS0,115200 quiet' });
    expect(f.inv.machines.get('52:54:00:77:00:41')).toMatchObject({ bootMode: 'maintenance', kernelArgs: 'say "hi"' });
    const audit = f.inv.audit.list({ limit: 100 });
    expect(audit.length - auditBefore).toBe(3);
    expect(audit[0]).toMatchObject({ actor: 'cli:test', action: 'machine.add', target: '52:54:00:77:00:43' });

    const again = prepareImport(f.inv, fixture('machines.csv'), { network: networkPolicy(f.config) });
    expect(again.plan.unchanged.length).toBe(3);
    expect(again.plan.add.length + again.plan.change.length).toBe(0);
  });

  it('plans the SIDUS dhcpd.conf and prints the dry run', () => {
    lab();
    const prepared = prepareImport(f.inv, fixture('dhcpd.conf'), { network: networkPolicy(f.config), filename: '/etc/dhcp/dhcpd.conf', root: 'lab' });
    expect(prepared.plan.add.map((a) => [a.line, a.mac, a.input.hostname])).toEqual([
      [24, '08:00:aa:bb:cc:dd', 'master'], [33, '52:54:00:77:00:11', 'node11'], [43, '52:54:00:77:00:12', 'node12'],
    ]);
    const text = describeImport(prepared);
    expect(text).toContain('add       line 43: 52:54:00:77:00:12 hostname=node12 ipv4=10.77.0.12 root=lab  (not imported: per-host boot file (filename/next-server), use a group)');
    expect(text).toContain('refuse    line 51: 52:54:00:77:00:13 ipv4: fixed-address node13.lab.sidereal is a host name, not an IPv4 address: put the address in the file');
    expect(text.at(-1)).toBe('dhcpd: 3 to add, 0 to change, 0 unchanged, 1 refused, 0 unreadable');
    applyImport(f.inv, prepared.plan);
    expect(f.inv.machines.list().length).toBe(5);
  });

  it('rolls everything back when one record fails at apply time, naming its line', () => {
    lab();
    const records = parseImport([
      'mac,hostname,ip,root',
      '52:54:00:77:00:50,node50,10.77.0.50,',
      '52:54:00:00:00:07,node07,10.77.0.17,',
      '52:54:00:77:00:52,node52,10.77.0.52,lab',
    ].join('\n'), 'csv').records;
    const p = plan(records);
    expect([p.add.length, p.change.length, p.refuse.length]).toEqual([2, 1, 0]);
    const machinesBefore = f.inv.machines.list();
    const auditBefore = f.inv.audit.list({ limit: 100 });
    // The root goes away between the dry run and the real run: the inventory refuses the last record.
    f.inv.roots.remove('lab');
    let err: unknown;
    try {
      applyImport(f.inv, p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImportApplyError);
    expect(err).toBeInstanceOf(InventoryError);
    expect(err).toMatchObject({ line: 4, mac: '52:54:00:77:00:52', code: 'unknown_reference', field: 'root',
      message: 'root: line 4 (52:54:00:77:00:52): no root named lab; nothing was imported' });
    // Lines 2 and 3 had landed inside the transaction (as savepoints): both are gone with it.
    expect(f.inv.machines.list()).toEqual(machinesBefore);
    expect(f.inv.machines.get('52:54:00:77:00:50')).toBeUndefined();
    expect(f.inv.audit.list({ limit: 100 })).toEqual(auditBefore);
    // And the inventory still takes writes: no transaction was left open.
    f.inv.machines.add('52:54:00:77:00:50', { hostname: 'node50' });
    expect(f.inv.db.inTransaction).toBe(false);
  });

  it('refuses an unknown or undetectable format naming the field', () => {
    lab();
    const opts = { network: networkPolicy(f.config) };
    expect(() => prepareImport(f.inv, 'x', { ...opts, format: 'xml' })).toThrow(/format: "xml" must be one of dhcpd, dnsmasq, ethers, csv/);
    expect(() => prepareImport(f.inv, 'hello\n', { ...opts, filename: 'notes.txt' })).toThrow(/format: cannot tell the format of notes.txt/);
  });
});
