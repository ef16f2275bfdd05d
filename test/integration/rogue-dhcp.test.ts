/**
 * Rogue DHCP detection (issue 7) against a real second server: dnsmasq, in a namespace linked
 * to the daemon's. Sidereal alone, answering clients of its own: nothing reported (its own
 * broadcast replies are not a rogue, its probe gets no answer from itself and no discovered
 * record). dnsmasq started: its broadcast OFFER to a client is seen while listening; after a
 * reload to a 1 s probe interval, the probe sees it; each time an error line, the metric and
 * `sidereal status`. dnsmasq stopped: after two silent probes it is no longer active.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rogueProbeMac } from '../../server/dhcp/rogue.js';
import { stopChild } from '../../lab/proc.js';
import { canUseNetns, createNs, destroyAll, linkNamespaces, nsExec, nsSpawn } from '../helpers/netns.js';
import { cli, cliIn, repoRoot, startServe, writeConfig, type Served } from '../helpers/serve.js';

const runnable = await canUseNetns();
if (!runnable && process.env.CI) throw new Error('CI must run the rogue DHCP test: needs network namespaces');

const SERVER = '10.81.0.1';
const ROGUE = '10.81.0.2';
const API_PORT = 18781;
const WRITERS = join(repoRoot, 'dist', 'test', 'crash', 'writers.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!runnable)('rogue DHCP detection', () => {
  let dir = '';
  let srv = '';
  let rog = '';
  let rogIf = '';
  let srvIf = '';
  let configFile = '';
  let token = '';
  let served: Served | undefined;
  let dnsmasq: ReturnType<typeof nsSpawn> | undefined;

  const doc = (interval: number) => ({
    interface: srvIf, serverAddress: SERVER, dataDir: join(dir, 'data'),
    dhcp: { subnet: '10.81.0.0/24', pool: { start: '10.81.0.10', end: '10.81.0.90' }, unknownClients: 'pool', rogueCheckInterval: interval },
    tftp: { root: join(dir, 'tftp') }, http: { port: 18780 }, api: { port: API_PORT }, nfs: { backend: 'none' },
  });
  const status = async () => {
    const r = await cliIn(srv, configFile, token, '--url', `http://127.0.0.1:${API_PORT}`, 'status');
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const metric = async (name: string) => {
    const r = await nsExec(srv, 'curl', ['-s', `http://127.0.0.1:${API_PORT}/metrics`], { reject: false });
    const line = String(r.stdout).split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  /** A few DHCP clients in the rogue's namespace, broadcast flag set (the crash test's writer). */
  const clients = async (prefix: number) => {
    const w = nsSpawn(rog, process.execPath, [WRITERS, 'dhcp', String(prefix), '3', '1']);
    return String((await w).stdout ?? '');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidereal-rogue-'));
    mkdirSync(join(dir, 'tftp'));
    srv = await createNs('rgs');
    rog = await createNs('rgr');
    const link = await linkNamespaces(srv, `${SERVER}/24`, rog, `${ROGUE}/24`, 'g');
    rogIf = link.bIf;
    srvIf = link.aIf;
    // The clients' broadcasts need a route in their namespace.
    await nsExec(rog, 'ip', ['route', 'add', 'default', 'dev', rogIf]);
    configFile = writeConfig(join(dir, 'sidereal.yaml'), doc(3600));
    const made = await cli(configFile, '--json', 'token', 'create', '--name', 'rogue', '--role', 'admin');
    token = (JSON.parse(made.stdout) as { token: string }).token;
    served = await startServe(srv, configFile);
  }, 60_000);

  afterAll(async () => {
    if (dnsmasq) await stopChild(dnsmasq, 2000);
    await served?.stop();
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports nothing while Sidereal is the only server, answering clients of its own', async () => {
    expect(await served!.waitFor((l) => l.msg === 'rogue DHCP check started', 5000)).toBeDefined();
    expect(await clients(1)).toMatch(/^lease 02:01:00:00:00:00 10\.81\.0\./m);
    await sleep(500);
    expect(served!.lines.filter((l) => l.check === 'rogue' && l.level === 50)).toEqual([]);
    expect(await status()).toMatch(/rogue {3}no other DHCP server answers \(last probe \d+ s ago\)/);
    expect(await metric('sidereal_dhcp_rogue_servers')).toBe(0);
    // Its own probe is not a client to Sidereal: nothing discovered, no lease under the probe's MAC.
    const discovered = await cliIn(srv, configFile, token, '--url', `http://127.0.0.1:${API_PORT}`, '--json', 'discovered', 'list');
    expect(discovered.stdout).not.toContain(rogueProbeMac(SERVER));
  }, 60_000);

  it('sees dnsmasq answering a client (listening), then answering its probe, and says so loudly', async () => {
    dnsmasq = nsSpawn(rog, 'dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${rogIf}`, '--bind-interfaces',
      '--dhcp-range=10.81.0.100,10.81.0.150,255.255.255.0,1h', `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      '--dhcp-boot=rogue.0', '--no-ping', `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    ], { reject: false });
    await sleep(1000);
    // A client's broadcast DISCOVER: both servers answer; dnsmasq's broadcast OFFER is seen on port 68.
    await clients(2);
    const seen = await served!.waitFor((l) => l.check === 'rogue' && l.rogueServer === ROGUE, 10_000);
    expect(seen).toMatchObject({ level: 50, seenBy: 'listening', bootFile: 'rogue.0', interface: expect.any(String) });
    expect(String(seen!.offered)).toMatch(/^10\.81\.0\.1[0-5]\d$/);
    const out = await status();
    expect(out).toMatch(/WARNING: 1 other DHCP server answers on the provisioning segment/);
    expect(out).toMatch(/10\.81\.0\.2: (OFFER|ACK) 10\.81\.0\.1[0-5]\d, boot file rogue\.0; \d+ replies/);
    expect(await metric('sidereal_dhcp_rogue_servers')).toBe(1);
    expect(await metric('sidereal_dhcp_rogue_replies_total')).toBeGreaterThanOrEqual(1);

    // Probing every second from now on (a reload restarts the check; the record stays).
    served!.lines.length = 0;
    writeConfig(configFile, doc(1));
    served!.proc.kill('SIGHUP');
    expect(await served!.waitFor((l) => l.msg === 'config reloaded', 30_000)).toBeDefined();
    const probed = await served!.waitFor((l) => l.check === 'rogue' && l.seenBy === 'probe', 10_000);
    expect(probed).toMatchObject({ level: 50, rogueServer: ROGUE, type: 'OFFER' });
  }, 90_000);

  it('no longer reports dnsmasq once it is gone, and keeps it as seen earlier', async () => {
    await stopChild(dnsmasq!, 2000);
    dnsmasq = undefined;
    // Stale after two probe intervals and 5 s without a reply.
    await sleep(8000);
    const out = await status();
    expect(out).toMatch(/no other DHCP server answers \(last probe \d+ s ago\); earlier: 10\.81\.0\.2 \(last seen \d+ s ago\)/);
    expect(await metric('sidereal_dhcp_rogue_servers')).toBe(0);
  }, 60_000);
});
