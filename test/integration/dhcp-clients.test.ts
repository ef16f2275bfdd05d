/**
 * The DHCP server in a network namespace against real clients (busybox
 * udhcpc, ISC dhclient) and a raw probe. Server namespace <-> client
 * namespace over one veth; the server is bound to its veth (SO_BINDTODEVICE).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePacket } from '../../server/dhcp/packet.js';
import { canUseNetns, createNs, destroyAll, ip, linkNamespaces } from '../helpers/netns.js';
import { dhclient, ensureBuilt, probe, startRunner, udhcpc, writeClientScripts, type Runner } from '../helpers/dhcp-ns.js';
import { makeRequest } from '../helpers/dhcp-packets.js';
import type { RunnerConfig } from '../helpers/dhcp-runner.js';

const NODE_MAC = '52:54:00:77:00:10';
const NODE_IP = '10.77.0.145';
const SERVER = '10.77.0.1';
const netnsOk = await canUseNetns();

describe.skipIf(!netnsOk)('dhcp server with real clients (netns)', () => {
  let dir = '';
  let srv = '';
  let cli = '';
  let cliIf = '';
  let runner: Runner | undefined;
  let scripts: { udhcpc: string; dhclient: string };

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'sid-dhcp-it-'));
    scripts = writeClientScripts(dir);
    srv = await createNs('dsrv');
    cli = await createNs('dcli');
    const { aIf, bIf } = await linkNamespaces(srv, `${SERVER}/24`, cli, null, 'c');
    cliIf = bIf;
    await ip('-n', cli, 'link', 'set', 'dev', cliIf, 'down');
    await ip('-n', cli, 'link', 'set', 'dev', cliIf, 'address', NODE_MAC);
    await ip('-n', cli, 'link', 'set', 'dev', cliIf, 'up');
    const cfg: RunnerConfig = {
      interface: aIf, address: '0.0.0.0', port: 67, serverId: SERVER,
      subnet: { network: '10.77.0.0', prefix: 24 }, router: SERVER, dns: [SERVER], domain: 'lab.test',
      leaseTime: 3600, pool: { start: '10.77.0.100', end: '10.77.0.130' }, unknownClients: 'pool',
      reservations: { [NODE_MAC]: { ipv4: NODE_IP, hostname: 'node-a' } },
    };
    runner = await startRunner(srv, cfg);
  }, 90_000);

  afterAll(async () => {
    await runner?.stop();
    await destroyAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('udhcpc gets the static lease, boot file and siaddr', async () => {
    const r = await udhcpc(cli, cliIf, scripts.udhcpc);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.env).toMatchObject({ ip: NODE_IP, siaddr: SERVER, boot_file: 'pxelinux.0', serverid: SERVER, subnet: '255.255.255.0', router: SERVER, hostname: 'node-a' });
    expect(await runner!.waitFor((l) => l.outcome === 'ack-selecting' && l.mac === NODE_MAC, 5000)).toMatchObject({ ip: NODE_IP, file: 'pxelinux.0', type: 'REQUEST', arch: 'bios' });
  }, 60_000);

  it('udhcpc with option 93 = 7 gets the efi64 boot file', async () => {
    const r = await udhcpc(cli, cliIf, scripts.udhcpc, ['-x', '0x5d:0007']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.env).toMatchObject({ ip: NODE_IP, siaddr: SERVER, boot_file: 'efi64/syslinux.efi' });
  }, 60_000);

  it('dhclient gets the same address', async () => {
    const r = await dhclient(cli, cliIf, dir, scripts.dhclient);
    expect(r.env, r.stderr).toBeDefined();
    expect(r.env).toMatchObject({ new_ip_address: NODE_IP, new_filename: 'pxelinux.0' });
  }, 60_000);

  it('a REQUEST naming another server gets no ACK (and the same REQUEST naming us does)', async () => {
    await ip('-n', cli, 'addr', 'add', '10.77.0.250/24', 'dev', cliIf);
    await ip('-n', cli, 'route', 'add', '255.255.255.255/32', 'dev', cliIf);
    try {
      const mac = '52:54:00:00:99:01';
      const other = encodePacket(makeRequest({ mac, type: 3, xid: 0x51de0001, serverId: '10.77.0.99', requestedIp: '10.77.0.120' })).toString('hex');
      const r1 = await probe(cli, { mode: 'send', to: '255.255.255.255', packets: [other], listenMs: 2500 });
      expect(r1.replies.filter((x: { xid: number }) => x.xid === 0x51de0001)).toEqual([]);
      expect(await runner!.waitFor((l) => l.mac === mac && l.outcome === 'ignored', 5000)).toBeDefined();
      const ours = encodePacket(makeRequest({ mac, type: 3, xid: 0x51de0002, serverId: SERVER, requestedIp: '10.77.0.120' })).toString('hex');
      const r2 = await probe(cli, { mode: 'send', to: '255.255.255.255', packets: [ours], listenMs: 2500 });
      expect(r2.replies.filter((x: { xid: number }) => x.xid === 0x51de0002)).toEqual([
        expect.objectContaining({ type: 5, yiaddr: '10.77.0.120', mac }),
      ]);
    } finally {
      await ip('-n', cli, 'route', 'del', '255.255.255.255/32', 'dev', cliIf).catch(() => '');
      await ip('-n', cli, 'addr', 'del', '10.77.0.250/24', 'dev', cliIf).catch(() => '');
    }
  }, 60_000);

  it('survives 1,000 malformed packets, then still serves a client', async () => {
    await ip('-n', cli, 'addr', 'add', '10.77.0.250/24', 'dev', cliIf);
    try {
      const r = await probe(cli, { mode: 'flood', to: SERVER, count: 1000 });
      expect(r.sent).toBe(1000);
    } finally {
      await ip('-n', cli, 'addr', 'del', '10.77.0.250/24', 'dev', cliIf).catch(() => '');
    }
    const malformedSeen = () => runner!.lines().filter((l) => l.outcome === 'malformed').length;
    await runner!.waitFor(() => malformedSeen() >= 400, 20_000);
    expect(malformedSeen()).toBeGreaterThanOrEqual(400);
    expect(runner!.lines().filter((l) => l.level === 50 || l.level === 60)).toEqual([]);   // no handler errors
    expect(runner!.alive()).toBe(true);
    const c = await udhcpc(cli, cliIf, scripts.udhcpc);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.env.ip).toBe(NODE_IP);
    expect(runner!.alive()).toBe(true);
  }, 90_000);
});
