/**
 * Topologies: a real relay (ISC dhcrelay) between the client and the server,
 * and a server namespace with two client networks where the server is bound
 * to one interface (SO_BINDTODEVICE) and must stay silent on the other.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, createNs, destroyAll, ip, linkNamespaces, nsSpawn } from '../helpers/netns.js';
import { ensureBuilt, startRunner, udhcpc, writeClientScripts, type Runner } from '../helpers/dhcp-ns.js';

const netnsOk = await canUseNetns();
const hasDhcrelay = (await execa('which', ['dhcrelay'], { reject: false })).exitCode === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runners: Runner[] = [];
const procs: ResultPromise[] = [];
let dir = '';
let scripts: { udhcpc: string; dhclient: string };

beforeAll(async () => {
  if (!netnsOk) return;
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'sid-dhcp-topo-'));
  scripts = writeClientScripts(dir);
}, 90_000);

afterAll(async () => {
  for (const r of runners) await r.stop();
  for (const p of procs) {
    if (p.exitCode === undefined || p.exitCode === null) p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await p;
    clearTimeout(t);
  }
  await destroyAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!netnsOk || !hasDhcrelay)('relayed through dhcrelay (netns)', () => {
  it('the client gets an address from the relay subnet', async () => {
    const cli = await createNs('rcli');
    const rel = await createNs('rrel');
    const srv = await createNs('rsrv');
    const c = await linkNamespaces(cli, null, rel, '10.88.0.1/24', 'r1');
    const s = await linkNamespaces(rel, '10.99.0.2/24', srv, '10.99.0.1/24', 'r2');
    await ip('-n', srv, 'route', 'add', '10.88.0.0/24', 'via', '10.99.0.2');
    runners.push(await startRunner(srv, {
      address: '0.0.0.0', port: 67, serverId: '10.99.0.1',
      subnet: { network: '10.99.0.0', prefix: 24 }, leaseTime: 600, unknownClients: 'pool',
      relays: [{ subnet: { network: '10.88.0.0', prefix: 24 }, router: '10.88.0.1', pool: { start: '10.88.0.100', end: '10.88.0.110' } }],
    }));
    const relay = nsSpawn(rel, 'dhcrelay', ['-d', '-4', '-pf', join(dir, 'dhcrelay.pid'), '-id', c.bIf, '-iu', s.aIf, '10.99.0.1'], { buffer: true });
    procs.push(relay);
    await sleep(1000);   // let dhcrelay open its sockets (it prints nothing reliable to wait on)
    const r = await udhcpc(cli, c.aIf, scripts.udhcpc, [], 5);
    expect(r.exitCode, `${r.stderr}`).toBe(0);
    expect(r.env).toMatchObject({ ip: '10.88.0.100', router: '10.88.0.1', subnet: '255.255.255.0', serverid: '10.99.0.1' });
    expect(await runners[0]!.waitFor((l) => l.outcome === 'ack-selecting', 5000)).toMatchObject({ giaddr: '10.88.0.1', ip: '10.88.0.100' });
  }, 60_000);
});

describe.skipIf(!netnsOk)('bound to one of two interfaces (netns)', () => {
  it('answers on its interface and never on the other', async () => {
    const srv = await createNs('bsrv');
    const good = await createNs('bgood');
    const other = await createNs('bothr');
    const g = await linkNamespaces(srv, '10.77.0.1/24', good, null, 'b1');
    const o = await linkNamespaces(srv, '10.78.0.1/24', other, null, 'b2');
    const runner = await startRunner(srv, {
      interface: g.aIf, address: '0.0.0.0', port: 67, serverId: '10.77.0.1',
      subnet: { network: '10.77.0.0', prefix: 24 }, router: '10.77.0.1', leaseTime: 600,
      pool: { start: '10.77.0.100', end: '10.77.0.110' }, unknownClients: 'pool',
    });
    runners.push(runner);
    const wrong = await udhcpc(other, o.bIf, scripts.udhcpc, [], 3);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.env.ip).toBeUndefined();
    // Nothing from that side even reached the handler.
    expect(runner.lines().filter((l) => typeof l.type === 'string' || l.outcome === 'malformed')).toEqual([]);
    const right = await udhcpc(good, g.bIf, scripts.udhcpc);
    expect(right.exitCode, right.stderr).toBe(0);
    expect(right.env).toMatchObject({ ip: '10.77.0.100', serverid: '10.77.0.1', boot_file: 'pxelinux.0' });
  }, 60_000);
});
