/**
 * Admin API figures (issue 3): registrations per second for N machines
 * (default 10,000) through the API, and the time from an API write to the
 * next DHCP reply that reflects it. `sidereal serve` runs in a namespace the
 * script makes; the client runs in a second one over a veth. Everything is
 * stopped by PID and removed at the end.
 *   node dist/bench/api.js [--machines 10000] [--concurrency 1,8] [--samples 200]
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNs, linkNamespaces, nsExec, destroyAll } from '../test/helpers/netns.js';
import { cli, startServe, writeConfig, repoRoot } from '../test/helpers/serve.js';

const { values } = parseArgs({ options: { machines: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '1,8' }, samples: { type: 'string', default: '200' } } });
const machines = Math.min(50_000, Math.max(1, Number(values.machines)));
const samples = Math.min(2_000, Math.max(1, Number(values.samples)));
const levels = values.concurrency.split(',').map(Number).filter((n) => n >= 1 && n <= 64);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function runOnce(concurrency: number) {
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-bench-api-'));
  try {
    mkdirSync(join(dir, 'tftp'));
    writeFileSync(join(dir, 'tftp', 'pxelinux.0'), 'x');
    const srv = await createNs('bsrv');
    const cl = await createNs('bcli');
    const link = await linkNamespaces(srv, '10.77.0.1/16', cl, '10.77.255.250/16', 'b');
    const config = writeConfig(join(dir, 'sidereal.yaml'), {
      interface: link.aIf, serverAddress: '10.77.0.1', dataDir: join(dir, 'data'),
      dhcp: { subnet: '10.77.0.0/16', pool: { start: '10.77.250.1', end: '10.77.250.200' } },
      tftp: { root: join(dir, 'tftp') }, http: { port: 8080 }, api: { listen: '10.77.0.1', port: 8081 },
    });
    const token = JSON.parse((await cli(config, '--json', 'token', 'create', '--name', 'bench', '--role', 'admin')).stdout).token as string;
    // The API on the namespace address, without TLS (--insecure): the load comes from the bench's other namespace.
    const served = await startServe(srv, config, ['--insecure']);
    try {
      const r = await nsExec(cl, process.execPath, [join(repoRoot, 'dist', 'bench', 'api-client.js'), JSON.stringify({
        api: 'http://10.77.0.1:8081', token, machines, concurrency, latencySamples: samples, firstIp: '10.77.1.1', broadcast: '10.77.255.255',
      })], { timeout: 30 * 60_000 });
      return JSON.parse(String(r.stdout).trim().split('\n').pop()!) as {
        registrations: { seconds: number; perSecond: number; failures: number };
        latency: { ms: number[]; missed: number };
      };
    } finally {
      await served.stop();
    }
  } finally {
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Array<Record<string, unknown>> = [];
try {
  for (const c of levels) {
    const r = await runOnce(c);
    const l = r.latency.ms;
    const row = {
      concurrency: c, machines, registrationsPerSecond: Number(r.registrations.perSecond.toFixed(1)), seconds: Number(r.registrations.seconds.toFixed(1)),
      failures: r.registrations.failures, writeToDhcpMs: { p50: Number(pct(l, 50).toFixed(2)), p99: Number(pct(l, 99).toFixed(2)), max: Number(Math.max(...l).toFixed(2)), samples: l.length, missed: r.latency.missed },
    };
    rows.push(row);
    console.log(`concurrency ${c}: ${machines} registrations in ${row.seconds} s = ${row.registrationsPerSecond}/s (${row.failures} failed); ` +
      `API write -> DHCP OFFER with it: p50 ${row.writeToDhcpMs.p50} ms, p99 ${row.writeToDhcpMs.p99} ms, max ${row.writeToDhcpMs.max} ms (${l.length} samples, ${r.latency.missed} missed; with ${machines} machines registered)`);
  }
} finally {
  await destroyAll();
}
mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
const out = join(repoRoot, 'bench', 'results', `api-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + '\n');
console.log(`wrote ${out}`);
