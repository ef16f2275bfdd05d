/**
 * kill -9 of the daemon while it takes writes (issue 7): 1,000 machine registrations through
 * the admin API (16 at a time) and a crowd of DHCP clients binding leases, both printing what
 * the daemon acknowledged as it does. At a random moment the daemon is killed with SIGKILL;
 * then the inventory is checked: `PRAGMA integrity_check` is ok, every acknowledged machine
 * and lease is there (a lease with the address its ACK gave), no address is bound twice; and
 * the next round starts the daemon again on the same files.
 * Everything runs in two namespaces this module makes (daemon; DHCP clients) and removes.
 */
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from '../../lab/proc.js';
import { createNs, destroyAll, linkNamespaces, nsExec, nsSpawn } from '../helpers/netns.js';
import { cli, repoRoot, startServe, writeConfig } from '../helpers/serve.js';

export interface CrashReport {
  kills: number;
  /** Writes the daemon acknowledged before it was killed, over all rounds. */
  machinesAcked: number;
  leasesAcked: number;
  /** Acknowledged and not found after the kill: must be 0. */
  machinesLost: string[];
  leasesLost: string[];
  integrity: string[];
  doubleBound: string[];
  /** Rounds the daemon did not come back from. */
  failedRestarts: string[];
}

const WRITERS = join(repoRoot, 'dist', 'test', 'crash', 'writers.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves at the child's first line of output (or after 10 s). */
function firstLine(child: ReturnType<typeof nsSpawn>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    child.stdout?.once('data', () => { clearTimeout(timer); resolve(); });
  });
}

export async function crashCampaign(kills: number, log: (line: string) => void = () => {}): Promise<CrashReport> {
  const report: CrashReport = { kills: 0, machinesAcked: 0, leasesAcked: 0, machinesLost: [], leasesLost: [], integrity: [], doubleBound: [], failedRestarts: [] };
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-crash-'));
  try {
    mkdirSync(join(dir, 'tftp'));
    const srv = await createNs('crs');
    const cln = await createNs('crc');
    // The clients' side needs an address only so their broadcasts have a route; they ask for leases all the same.
    const link = await linkNamespaces(srv, '10.80.0.1/16', cln, '10.80.0.2/16', 'k');
    // Limited broadcasts need a route: the namespace's only link (Node cannot bind a socket to a device).
    await nsExec(cln, 'ip', ['route', 'add', 'default', 'dev', link.bIf]);
    const config = writeConfig(join(dir, 'sidereal.yaml'), {
      interface: link.aIf, serverAddress: '10.80.0.1', dataDir: join(dir, 'data'),
      dhcp: { subnet: '10.80.0.0/16', router: '10.80.0.1', leaseTime: 3600, pool: { start: '10.80.1.1', end: '10.80.255.250' }, unknownClients: 'pool', maxPacketsPerMac: 0 },
      tftp: { root: join(dir, 'tftp') }, http: { port: 18680 }, api: { port: 18681 },
      stopGraceSeconds: 0,
    });
    const made = await cli(config, '--json', 'token', 'create', '--name', 'crash', '--role', 'admin');
    if (made.code !== 0) throw new Error(`token create: ${made.stderr}`);
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const dbFile = join(dir, 'data', 'inventory.sqlite');

    for (let round = 1; round <= kills; round++) {
      let served;
      try {
        served = await startServe(srv, config);
      } catch (e) {
        report.failedRestarts.push(`round ${round}: ${(e as Error).message.slice(0, 300)}`);
        break;
      }
      const prefix = round & 255;
      const apiWriter = nsSpawn(srv, process.execPath, [WRITERS, 'api', 'http://127.0.0.1:18681', token, String(prefix), '1000', '16']);
      const dhcpWriter = nsSpawn(cln, process.execPath, [WRITERS, 'dhcp', String(prefix), '400', '16']);
      // The kill lands at a random point once both writers are being acknowledged.
      await Promise.all([firstLine(apiWriter), firstLine(dhcpWriter)]);
      await sleep(Math.floor(Math.random() * 1500));
      process.kill(served.proc.pid!, 'SIGKILL');
      await served.proc.catch(() => undefined);
      report.kills++;
      // The writers see the daemon gone (refused connections, unanswered DISCOVERs); stop them by PID.
      await sleep(1500);
      await Promise.all([stopChild(apiWriter, 1000), stopChild(dhcpWriter, 1000)]);
      const lines = [...String((await apiWriter).stdout ?? '').split('\n'), ...String((await dhcpWriter).stdout ?? '').split('\n')];
      const machines = lines.filter((l) => l.startsWith('machine ')).map((l) => l.split(' ')[1]!);
      const leases = lines.filter((l) => l.startsWith('lease ')).map((l) => l.split(' ') as [string, string, string]);
      report.machinesAcked += machines.length;
      report.leasesAcked += leases.length;

      const db = new Database(dbFile);
      try {
        const ok = db.pragma('integrity_check', { simple: true });
        if (ok !== 'ok') report.integrity.push(`round ${round}: ${String(ok)}`);
        const machine = db.prepare('SELECT 1 FROM machines WHERE mac = ?');
        for (const m of machines) if (!machine.get(m)) report.machinesLost.push(`round ${round}: ${m}`);
        const lease = db.prepare<[string], { ipv4: string; state: string }>('SELECT ipv4, state FROM leases WHERE mac = ?');
        for (const [, m, ip] of leases) {
          const l = lease.get(m);
          if (!l || l.ipv4 !== ip || l.state !== 'bound') report.leasesLost.push(`round ${round}: ${m} ${ip} (found ${JSON.stringify(l ?? null)})`);
        }
        const dup = db.prepare("SELECT ipv4, count(*) AS n FROM leases WHERE state = 'bound' GROUP BY ipv4 HAVING n > 1").all();
        if (dup.length) report.doubleBound.push(`round ${round}: ${JSON.stringify(dup)}`);
      } finally {
        db.close();
      }
      log(`round ${round}: killed after ${machines.length} registrations and ${leases.length} leases acknowledged; ` +
        `lost ${report.machinesLost.length + report.leasesLost.length} so far`);
    }
    // The last kill, too, must leave a daemon that starts.
    try {
      const served = await startServe(srv, config);
      await served.stop();
    } catch (e) {
      report.failedRestarts.push(`after the last kill: ${(e as Error).message.slice(0, 300)}`);
    }
    return report;
  } finally {
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
