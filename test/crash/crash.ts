/**
 * kill -9 of the daemon while it takes writes (issue 7): 1,000 machine registrations through
 * the admin API (16 at a time) and a crowd of DHCP clients binding leases, both printing what
 * the daemon acknowledged as it does. At a random moment the daemon is killed with SIGKILL;
 * then the inventory is checked: `PRAGMA integrity_check` is ok, every acknowledged machine
 * and lease is there (a lease with the address its ACK gave), no address is bound twice; and
 * the next round starts the daemon again on the same files.
 * With `build`, a live root is built first, and every round starts a rebuild that the kill
 * lands in at a random point of its course (test/crash/roots.ts checks the roots after each
 * restart). The daemon runs in the server namespace's network but this mount namespace, so its
 * build mounts are seen here and a restarted daemon finds them.
 * Everything runs in two namespaces this module makes (daemon; DHCP clients) and removes.
 */
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from '../../lab/proc.js';
import { createNs, destroyAll, linkNamespaces, nsExec, nsSpawn } from '../helpers/netns.js';
import { cli, repoRoot, startServe, writeConfig } from '../helpers/serve.js';
import { checkRoots, DaemonApi, rootsSetup, startMirrorProxy } from './roots.js';
import { mountsUnder } from '../../server/roots/mounts.js';

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
  /** With `build`: how long the first (whole) build took, and where each kill found the rebuild. */
  build?: { firstBuildSeconds: number; killedInStep: Record<string, number>; finishedBeforeKill: number; rootProblems: string[] };
}

export interface CrashOptions {
  /** Rebuild a root in every round. */
  build?: boolean;
  /** Stop after the round in progress (and clean up: daemon, namespaces, mounts checked, files). */
  signal?: AbortSignal;
}

const WRITERS = join(repoRoot, 'dist', 'test', 'crash', 'writers.js');
const BRIDGE = join(repoRoot, 'dist', 'test', 'crash', 'proxy-bridge.js');
/** A package cache of the campaign's own: its builds run beside any other (a CI run's, the lab's) without sharing .debs mid-write. */
const CRASH_CACHE = '/var/cache/sidereal-crash';
/** Where the builds' proxy listens in the server namespace; the mirrors it forwards to (this machine's apt source). */
const PROXY_PORT = 3142;
const MIRRORS = ['deb.debian.org'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves at the child's first line of output (or after 10 s). */
function firstLine(child: ReturnType<typeof nsSpawn>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    child.stdout?.once('data', () => { clearTimeout(timer); resolve(); });
  });
}

export async function crashCampaign(kills: number, log: (line: string) => void = () => {}, opts: CrashOptions = {}): Promise<CrashReport> {
  const report: CrashReport = { kills: 0, machinesAcked: 0, leasesAcked: 0, machinesLost: [], leasesLost: [], integrity: [], doubleBound: [], failedRestarts: [] };
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-crash-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    mkdirSync(join(dir, 'tftp'));
    const roots = rootsSetup(dir, join(dir, 'tftp'));
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
      roots: { dir: roots.rootsDir, cacheDir: CRASH_CACHE, recipes: roots.recipes, proxy: `http://127.0.0.1:${PROXY_PORT}` },
      nfs: { backend: 'none' },
      stopGraceSeconds: 0,
    });
    const made = await cli(config, '--json', 'token', 'create', '--name', 'crash', '--role', 'admin');
    if (made.code !== 0) throw new Error(`token create: ${made.stderr}`);
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const dbFile = join(dir, 'data', 'inventory.sqlite');
    // Recovering from a kill in a build (stopping its processes, removing a half-built tree) takes a while.
    const start = () => startServe(srv, config, [], { hostMounts: true, readyMs: opts.build ? 180_000 : 30_000 });
    /** A daemon that did not come back: its whole log goes to a file, for the report. */
    const failed = (when: string, e: unknown) => {
      const file = join(tmpdir(), `sidereal-crash-${process.pid}-${when.replace(/\W+/g, '-')}.log`);
      writeFileSync(file, (e as Error).message);
      report.failedRestarts.push(`${when}: ${(e as Error).message.slice(0, 300)} (whole log: ${file})`);
    };
    const api = new DaemonApi(srv, 'http://127.0.0.1:18681', token);
    const http = 'http://10.80.0.1:18680';
    let buildSpanMs = 0;
    if (opts.build) {
      const sock = join(dir, 'mirror.sock');
      const closeProxy = await startMirrorProxy(sock, MIRRORS);
      cleanups.push(closeProxy);
      const bridge = nsSpawn(srv, process.execPath, [BRIDGE, sock, String(PROXY_PORT)]);
      cleanups.push(() => stopChild(bridge, 1000));
      await firstLine(bridge);
      // The live root every rebuild must leave intact: built whole, once.
      const served = await start();
      const t0 = Date.now();
      const first = await api.startBuild();
      const done = await api.waitBuild(first.id, 40 * 60_000);
      await served.stop();
      if (done.state !== 'succeeded') throw new Error(`the first build of the live root ${done.state}: ${done.error}`);
      buildSpanMs = Date.now() - t0;
      report.build = { firstBuildSeconds: Math.round(buildSpanMs / 1000), killedInStep: {}, finishedBeforeKill: 0, rootProblems: [] };
      log(`live root built in ${report.build.firstBuildSeconds} s`);
    }

    for (let round = 1; round <= kills && !opts.signal?.aborted; round++) {
      let served;
      try {
        served = await start();
      } catch (e) {
        failed(`round ${round}`, e);
        break;
      }
      let rebuild: number | undefined;
      if (report.build) {
        // The restart has recovered what the last kill left: the roots must be whole and served.
        for (const p of await checkRoots(api, roots, srv, http)) report.build.rootProblems.push(`round ${round}: ${p}`);
        rebuild = (await api.startBuild()).id;
        // Somewhere in the rebuild's course, or (one time in ten) just after it ended.
        await sleep(Math.floor(Math.random() * buildSpanMs * 1.1));
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

      let during = '';
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
        if (report.build && rebuild !== undefined) during = whereTheKillLanded(db, rebuild, report.build.killedInStep, () => report.build!.finishedBeforeKill++);
      } finally {
        db.close();
      }
      log(`round ${round}: killed${during} after ${machines.length} registrations and ${leases.length} leases acknowledged; ` +
        `lost ${report.machinesLost.length + report.leasesLost.length} so far`);
    }
    // The last kill, too, must leave a daemon that starts (with its roots whole).
    try {
      const served = await start();
      if (report.build) for (const p of await checkRoots(api, roots, srv, http)) report.build.rootProblems.push(`after the last kill: ${p}`);
      await served.stop();
    } catch (e) {
      failed('after the last kill', e);
    }
    return report;
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
    await destroyAll();
    // Never a recursive delete through a mount a build left (its /proc, /dev, the package cache).
    const left = await mountsUnder(dir).catch(() => ['(cannot read the mount table)']);
    if (left.length === 0) rmSync(dir, { recursive: true, force: true });
    else log(`left ${dir} in place: mounts under it: ${left.join(' ')}`);
  }
}

/** Where a kill found the rebuild, from its row as the kill left it (before a restart marks it failed). */
function whereTheKillLanded(db: Database.Database, id: number, killedInStep: Record<string, number>, finished: () => void): string {
  const b = db.prepare<[number], { state: string; step: string | null }>('SELECT state, step FROM builds WHERE id = ?').get(id);
  if (b?.state === 'running' || b?.state === 'queued') {
    const step = b.step ?? 'start';
    killedInStep[step] = (killedInStep[step] ?? 0) + 1;
    return ` during the rebuild's step ${step};`;
  }
  finished();
  return ` after the rebuild ${b?.state};`;
}
