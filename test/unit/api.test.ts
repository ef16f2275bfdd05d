/** The admin API through fastify's inject: every route, its error paths and the auth matrix. */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { buildApiApp } from '../../server/http/api/app.js';
import { explain } from '../../server/boot/explain.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';
import { silentLogger } from '../../server/log.js';
import { readFileSync } from 'node:fs';

let f: Fixture;
let app: FastifyInstance;
let admin: string;
let reader: string;
const MAC = '52:54:00:77:00:10';

beforeEach(() => {
  f = makeFixture();
  addLabRoot(f);
  app = buildApiApp(f.inv, f.config, silentLogger());
  admin = f.inv.tokens.create('ops', 'admin').token;
  reader = f.inv.tokens.create('dashboard', 'read').token;
});
afterEach(async () => {
  await app.close();
  f.cleanup();
});

const call = (method: string, url: string, body?: unknown, token: string | null = admin, raw?: string) =>
  app.inject({
    method: method as 'GET', url,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
    payload: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });

describe('machines', () => {
  it('registers, shows with effective settings and their source, lists, updates, deletes', async () => {
    f.inv.groups.put({ name: 'compute', bootMode: 'maintenance' });
    const add = await call('POST', '/api/v1/machines', { mac: '52-54-00-77-00-10', hostname: 'node01', ipv4: '10.77.0.10', root: 'lab', group: 'compute' });
    expect(add.statusCode).toBe(201);
    expect(add.json()).toMatchObject({ mac: MAC, hostname: 'node01', ipv4: '10.77.0.10' });
    expect(add.headers.location).toBe(`/api/v1/machines/${MAC}`);

    const show = (await call('GET', '/api/v1/machines/5254.0077.0010', undefined, reader)).json();
    expect(show.effective.root).toEqual({ value: 'lab', from: 'machine' });
    expect(show.effective.bootMode).toEqual({ value: 'maintenance', from: 'group' });
    expect(show.effective.loader).toEqual({ value: 'pxelinux', from: 'default' });
    expect(show.lease).toBeNull();

    for (let i = 1; i <= 5; i++) await call('POST', '/api/v1/machines', { mac: `52:54:00:77:01:0${i}`, hostname: `n${i}` });
    const page = (await call('GET', '/api/v1/machines?limit=2&offset=1', undefined, reader)).json();
    expect(page).toMatchObject({ total: 6, limit: 2, offset: 1 });
    expect(page.items.map((m: { hostname: string }) => m.hostname)).toEqual(['n2', 'n3']);
    expect((await call('GET', '/api/v1/machines?group=compute')).json().total).toBe(1);
    expect((await call('GET', '/api/v1/machines?status=online')).json().total).toBe(0);
    f.inv.leases.upsert({ mac: MAC, ipv4: '10.77.0.10', hostname: 'node01', state: 'bound', expiresAt: Date.now() + 60_000 });
    expect((await call('GET', '/api/v1/machines?status=online')).json().items[0].mac).toBe(MAC);
    expect((await call('GET', '/api/v1/machines?status=offline')).json().total).toBe(5);

    const upd = await call('PATCH', `/api/v1/machines/${MAC}`, { hostname: 'node99', group: null });
    expect(upd.json()).toMatchObject({ hostname: 'node99', group: null });
    expect((await call('DELETE', `/api/v1/machines/${MAC}`)).statusCode).toBe(200);
    expect((await call('GET', `/api/v1/machines/${MAC}`)).statusCode).toBe(404);
  });

  it.each([
    ['malformed JSON', undefined, '{"mac": ', 400, 'body'],
    ['empty body', undefined, '', 400, 'body'],
    ['wrong type', { mac: MAC, hostname: 42 }, undefined, 400, 'hostname'],
    ['a number as a string is not coerced', { mac: MAC, ipv4: 10 }, undefined, 400, 'ipv4'],
    ['unknown field', { mac: MAC, colour: 'blue' }, undefined, 400, 'colour'],
    ['missing MAC', { hostname: 'x' }, undefined, 400, 'mac'],
    ['bad MAC', { mac: 'zz:54:00:77:00:10' }, undefined, 400, 'mac'],
    ['multicast MAC', { mac: '01:00:5e:00:00:01' }, undefined, 400, 'mac'],
    ['all-zero MAC', { mac: '00:00:00:00:00:00' }, undefined, 400, 'mac'],
    ['bad host name', { mac: MAC, hostname: '-bad' }, undefined, 400, 'hostname'],
    ['IP in the pool', { mac: MAC, ipv4: '10.77.0.120' }, undefined, 400, 'ipv4'],
    ['IP outside the subnet', { mac: MAC, ipv4: '192.0.2.1' }, undefined, 400, 'ipv4'],
    ['server address', { mac: MAC, ipv4: '10.77.0.1' }, undefined, 400, 'ipv4'],
    ['bad boot mode', { mac: MAC, bootMode: 'sometimes' }, undefined, 400, 'bootMode'],
    ['unknown root', { mac: MAC, root: 'nope' }, undefined, 422, 'root'],
    ['unknown group', { mac: MAC, group: 'nope' }, undefined, 422, 'group'],
  ])('refuses %s with a clear 4xx naming the field and stores nothing', async (_what, body, raw, status, field) => {
    const r = await call('POST', '/api/v1/machines', body, admin, raw);
    expect(r.statusCode).toBe(status);
    expect(r.json()).toMatchObject({ field });
    expect(typeof r.json().message).toBe('string');
    expect(f.inv.machines.list()).toEqual([]);
    expect(f.inv.audit.list({ limit: 10 })).toEqual([]);
  });

  it('answers 409 naming the machine that holds a MAC, an IP or a host name, and keeps what was stored', async () => {
    await call('POST', '/api/v1/machines', { mac: MAC, hostname: 'node01', ipv4: '10.77.0.10' });
    const dupMac = await call('POST', '/api/v1/machines', { mac: '525400770010' });
    expect(dupMac.statusCode).toBe(409);
    expect(dupMac.json()).toMatchObject({ error: 'conflict', field: 'mac' });
    const dupIp = await call('POST', '/api/v1/machines', { mac: '52:54:00:77:00:11', ipv4: '10.77.0.10' });
    expect(dupIp.statusCode).toBe(409);
    expect(dupIp.json().message).toContain('node01 (52:54:00:77:00:10)');
    const dupHost = await call('POST', '/api/v1/machines', { mac: '52:54:00:77:00:11', hostname: 'NODE01' });
    expect(dupHost.json()).toMatchObject({ field: 'hostname' });
    expect(f.inv.machines.get(MAC)).toMatchObject({ hostname: 'node01', ipv4: '10.77.0.10' });
    expect(f.inv.machines.list()).toHaveLength(1);
  });

  it('refuses an oversize body with 413', async () => {
    const r = await call('POST', '/api/v1/machines', { mac: MAC, kernelArgs: 'x'.repeat(2 * 1024 * 1024) });
    expect(r.statusCode).toBe(413);
    expect(f.inv.machines.list()).toEqual([]);
  });

  it('lets exactly one of many concurrent registrations of one MAC win', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/api/v1/machines', { mac: MAC, hostname: `racer${i}` })));
    expect(results.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(results.filter((r) => r.statusCode === 409)).toHaveLength(19);
    expect(f.inv.audit.list({ limit: 100 })).toHaveLength(1);
  });

  it('explains through the serving code path and lists boot events', async () => {
    await call('POST', '/api/v1/machines', { mac: MAC, hostname: 'node01', ipv4: '10.77.0.10', root: 'lab' });
    const r = await call('GET', `/api/v1/machines/${MAC}/explain?arch=efi64`, undefined, reader);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual(JSON.parse(JSON.stringify(explain(f.inv, f.config, MAC, 'efi64'))));
    expect(r.json().dhcp.file).toBe('efi64/syslinux.efi');
    expect((await call('GET', `/api/v1/machines/${MAC}/explain?arch=sparc`)).statusCode).toBe(400);
    f.inv.events.record(MAC, 'tftp', { file: 'pxelinux.0', bytes: 10 });
    const ev = (await call('GET', `/api/v1/machines/${MAC}/events`, undefined, reader)).json();
    expect(ev.events[0]).toMatchObject({ stage: 'tftp', detail: { file: 'pxelinux.0' } });
  });
});

describe('groups, roots, discovery, audit', () => {
  it('manages groups with inheritance and refuses deleting one in use', async () => {
    expect((await call('POST', '/api/v1/groups', { name: 'gpu', root: 'lab', loader: 'ipxe', bootFiles: { efi64: 'efi64/custom.efi' } })).statusCode).toBe(201);
    expect((await call('POST', '/api/v1/groups', { name: 'gpu' })).statusCode).toBe(409);
    expect((await call('POST', '/api/v1/groups', { name: 'bad', bootFiles: { sparc: 'x' } })).json().field).toBe('bootFiles.sparc');
    expect((await call('POST', '/api/v1/groups', { name: 'x', root: 'nope' })).statusCode).toBe(422);
    await call('POST', '/api/v1/machines', { mac: MAC, group: 'gpu' });
    expect((await call('GET', `/api/v1/machines/${MAC}`)).json().effective.root).toEqual({ value: 'lab', from: 'group' });
    const patched = (await call('PATCH', '/api/v1/groups/gpu', { bootMode: 'local' })).json();
    expect(patched).toMatchObject({ bootMode: 'local', loader: 'ipxe', root: 'lab' });
    expect((await call('GET', '/api/v1/groups/gpu')).json().machines).toEqual([MAC]);
    expect((await call('DELETE', '/api/v1/groups/gpu')).statusCode).toBe(409);
  });

  it('puts and lists roots', async () => {
    const r = await call('PUT', '/api/v1/roots/bookworm', { arch: 'amd64', kernel: 'vmlinuz-6.1@bookworm', initrd: 'initrd.img-6.1@bookworm', nfsPath: '/srv/sidereal/roots/bookworm' });
    expect(r.statusCode).toBe(200);
    expect((await call('GET', '/api/v1/roots', undefined, reader)).json().items.map((x: { name: string }) => x.name)).toEqual(['bookworm', 'lab']);
    expect((await call('PUT', '/api/v1/roots/bad', { arch: 'sparc', kernel: 'k', initrd: 'i', nfsPath: '/x' })).json().field).toBe('arch');
    expect((await call('PUT', '/api/v1/roots/bad', { arch: 'amd64', kernel: '../k', initrd: 'i', nfsPath: '/x' })).json().field).toBe('kernel');
  });

  it('records unknown MACs that ask for DHCP and adopts one in a call', async () => {
    const backend = new InventoryDhcpBackend(f.inv, f.config);
    backend.clientSeen({ mac: 'aa:bb:cc:00:00:01', type: 'DISCOVER', archCode: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' });
    backend.clientSeen({ mac: 'aa:bb:cc:00:00:01', type: 'REQUEST', hostname: 'newbox' }); // within 10 s: counted, not written
    backend.clientSeen({ mac: MAC, type: 'DISCOVER' });
    await call('POST', '/api/v1/machines', { mac: MAC });
    const list = (await call('GET', '/api/v1/discovered', undefined, reader)).json().items;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ mac: 'aa:bb:cc:00:00:01', archCode: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' });
    const adopt = await call('POST', '/api/v1/discovered/aa-bb-cc-00-00-01/adopt', { hostname: 'box1', root: 'lab' });
    expect(adopt.statusCode).toBe(201);
    expect(f.inv.machines.get('aa:bb:cc:00:00:01')).toMatchObject({ hostname: 'box1', root: 'lab' });
    expect((await call('GET', '/api/v1/discovered')).json().items).toEqual([]);
    expect((await call('POST', '/api/v1/discovered/aa:bb:cc:00:00:09/adopt', {})).statusCode).toBe(404);
  });

  it('audits every write with who, what, before and after', async () => {
    await call('POST', '/api/v1/machines', { mac: MAC, hostname: 'node01' });
    await call('PATCH', `/api/v1/machines/${MAC}`, { hostname: 'node02' });
    await call('DELETE', `/api/v1/machines/${MAC}`);
    const items = (await call('GET', '/api/v1/audit', undefined, reader)).json().items;
    expect(items.map((e: { action: string }) => e.action)).toEqual(['machine.delete', 'machine.update', 'machine.add']);
    expect(items[1]).toMatchObject({ actor: 'token:ops', target: MAC, before: { hostname: 'node01' }, after: { hostname: 'node02' } });
    expect(items[0].after).toBeNull();
  });
});

describe('import', () => {
  const dhcpd = readFileSync(new URL('../fixtures/import/dhcpd.conf', import.meta.url), 'utf8');

  it('dry run lists what would be added or refused and why, and stores nothing', async () => {
    const r = await call('POST', '/api/v1/import', { text: dhcpd, filename: 'dhcpd.conf', dryRun: true, root: 'lab' });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.format).toBe('dhcpd');
    expect(body.plan.add.map((a: { mac: string }) => a.mac)).toContain('52:54:00:77:00:11');
    expect(body.plan.refuse[0]).toMatchObject({ field: 'ipv4', mac: '52:54:00:77:00:13' });
    expect(f.inv.machines.list()).toEqual([]);
  });

  it('the real run lands in one transaction, audited, and says what it refused', async () => {
    const r = (await call('POST', '/api/v1/import', { text: dhcpd, format: 'dhcpd', root: 'lab' })).json();
    expect(r).toMatchObject({ dryRun: false, added: 3, changed: 0 });
    expect(r.refused).toHaveLength(1);
    expect(f.inv.machines.get('52:54:00:77:00:11')).toMatchObject({ hostname: 'node11', ipv4: '10.77.0.11', root: 'lab' });
    expect(f.inv.audit.list({ limit: 10 }).every((e) => e.actor === 'token:ops')).toBe(true);
    const again = (await call('POST', '/api/v1/import', { text: dhcpd, format: 'dhcpd', root: 'lab' })).json();
    expect(again).toMatchObject({ added: 0, changed: 0, unchanged: 3 });
  });

  it('refuses a bad format or an unknown default root naming the field', async () => {
    expect((await call('POST', '/api/v1/import', { text: dhcpd, format: 'bind' })).json().field).toBe('format');
    expect((await call('POST', '/api/v1/import', { text: 'just words' })).json().field).toBe('format');
    const r = await call('POST', '/api/v1/import', { text: dhcpd, format: 'dhcpd', root: 'nope' });
    expect(r.statusCode).toBe(422);
    expect(r.json().field).toBe('root');
    expect((await call('POST', '/api/v1/import', { text: dhcpd, format: 'dhcpd' }, reader)).statusCode).toBe(403);
  });
});

describe('auth', () => {
  const writes: Array<[string, string, unknown]> = [
    ['POST', '/api/v1/machines', { mac: MAC }],
    ['PATCH', `/api/v1/machines/${MAC}`, { hostname: 'x' }],
    ['DELETE', `/api/v1/machines/${MAC}`, undefined],
    ['POST', '/api/v1/groups', { name: 'g' }],
    ['PATCH', '/api/v1/groups/g', { bootMode: 'local' }],
    ['DELETE', '/api/v1/groups/g', undefined],
    ['PUT', '/api/v1/roots/r', { arch: 'amd64', kernel: 'k', initrd: 'i', nfsPath: '/x' }],
    ['DELETE', '/api/v1/roots/r', undefined],
    ['POST', `/api/v1/discovered/${MAC}/adopt`, {}],
    ['POST', '/api/v1/import', { text: 'x', format: 'ethers', dryRun: true }],
  ];

  it.each(writes)('%s %s: 401 without or with a revoked token, 403 for read, allowed for admin', async (method, url, body) => {
    expect((await call(method, url, body, null)).statusCode).toBe(401);
    expect((await call(method, url, body, 'sdr_not-a-token')).statusCode).toBe(401);
    const r = await call(method, url, body, reader);
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ error: 'forbidden', field: 'authorization' });
    const old = f.inv.tokens.create('old-admin', 'admin').token;
    f.inv.tokens.revoke('old-admin');
    expect((await call(method, url, body, old)).statusCode).toBe(401);
    expect([200, 201, 404, 409]).toContain((await call(method, url, body, admin)).statusCode);
    expect(f.inv.audit.list({ limit: 100 }).every((e) => e.actor === 'token:ops')).toBe(true);
  });

  const bodies: Array<[string, string, Record<string, unknown>]> = [
    ['POST', '/api/v1/machines', { mac: MAC }],
    ['PATCH', `/api/v1/machines/${MAC}`, { hostname: 'x' }],
    ['POST', '/api/v1/groups', { name: 'g' }],
    ['PATCH', '/api/v1/groups/g', { bootMode: 'local' }],
    ['PUT', '/api/v1/roots/r', { arch: 'amd64', kernel: 'k', initrd: 'i', nfsPath: '/x' }],
    ['POST', `/api/v1/discovered/${MAC}/adopt`, { hostname: 'box' }],
    ['POST', '/api/v1/import', { text: 'x', format: 'ethers', dryRun: true }],
  ];

  it.each(bodies)('%s %s: malformed JSON, an unknown field, a wrong type and an oversize body are 4xx and change nothing', async (method, url, body) => {
    f.inv.groups.put({ name: 'g' });
    f.inv.machines.add(MAC, { hostname: 'keep' });
    const before = JSON.stringify([f.inv.machines.list(), f.inv.groups.list(), f.inv.roots.list()]);
    const bad = [
      await call(method, url, undefined, admin, '{"oops": '),
      await call(method, url, { ...body, surprise: 1 }),
      await call(method, url, Object.fromEntries(Object.keys(body).map((k) => [k, { nested: true }]))),
      await call(method, url, { ...body, pad: 'x'.repeat(9 * 1024 * 1024) }),
    ];
    expect(bad.map((r) => r.statusCode)).toEqual([400, 400, 400, 413]);
    for (const r of bad) expect(Object.keys(r.json()).sort()).toEqual(['error', 'field', 'message']);
    expect(bad[1]!.json().field).toBe('surprise');
    expect(JSON.stringify([f.inv.machines.list(), f.inv.groups.list(), f.inv.roots.list()])).toBe(before);
  });

  it('reads need a token too; the OpenAPI document and docs are public and list every route', async () => {
    expect((await call('GET', '/api/v1/machines', undefined, null)).statusCode).toBe(401);
    const doc = (await call('GET', '/api/v1/openapi.json', undefined, null)).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/api/v1/machines', '/api/v1/machines/{mac}', '/api/v1/machines/{mac}/explain', '/api/v1/machines/{mac}/events',
      '/api/v1/groups', '/api/v1/groups/{name}', '/api/v1/roots', '/api/v1/roots/{name}', '/api/v1/discovered',
      '/api/v1/discovered/{mac}/adopt', '/api/v1/audit', '/api/v1/import',
    ]));
    expect(doc.paths['/api/v1/machines'].post.requestBody.content['application/json'].schema.required).toEqual(['mac']);
    const docs = await call('GET', '/api/v1/docs', undefined, null);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
    expect(docs.body).toContain('/api/v1/machines/{mac}/explain');
    expect((await call('GET', '/api/v1/nope')).statusCode).toBe(404);
  });
});
