/**
 * TFTP throughput: Sidereal's server against tftpd-hpa on the same 100 MiB
 * file, inside a network namespace this script creates (loopback of the
 * namespace: nothing touches the host's interfaces) and removes at the end,
 * even on error. Every process it starts is stopped by PID.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tftp.js [--runs 3] [--size-mib 100]
 *
 * Prints a table of MB/s (10^6 bytes/s; median, min-max over the runs) and
 * writes bench/results/tftp-<date>.json. Needs root (ip netns), curl, atftp
 * and /usr/sbin/in.tftpd.
 */
import { execa, type ResultPromise } from 'execa';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { cpus, release, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createNs, destroyAll, ip, nsExec, nsSpawn } from '../test/helpers/netns.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'size-mib': { type: 'string', default: '100' } } });
const RUNS = Math.max(1, Math.min(20, Number(values.runs)));
const SIZE = Math.max(1, Number(values['size-mib'])) * 1024 * 1024;
const ADDR = '127.0.0.1';
const OUR_PORT = 6969;
const HPA_PORT = 7069;
const CLIENT_TIMEOUT_MS = 300_000;
/** Scratch for atftp's output (it cannot write to a pipe); tmpfs keeps disk speed out of the figures. */
const SCRATCH = '/dev/shm';

type Server = 'sidereal' | 'tftpd-hpa';
interface Case { name: string; client: 'curl' | 'atftp'; blksize: number; windowsize?: number; servers: Server[] }

const CASES: Case[] = [
  { name: 'curl blksize 1468', client: 'curl', blksize: 1468, servers: ['sidereal', 'tftpd-hpa'] },
  { name: 'curl blksize 8192', client: 'curl', blksize: 8192, servers: ['sidereal', 'tftpd-hpa'] },
  { name: 'atftp blksize 1468 windowsize 1', client: 'atftp', blksize: 1468, windowsize: 1, servers: ['sidereal', 'tftpd-hpa'] },
  // tftpd-hpa has no windowsize (it ignores the option): these rows compare
  // our windowed transfer with its lock-step one, the best it can do.
  { name: 'atftp blksize 1468 windowsize 8', client: 'atftp', blksize: 1468, windowsize: 8, servers: ['sidereal', 'tftpd-hpa'] },
  { name: 'atftp blksize 1468 windowsize 16', client: 'atftp', blksize: 1468, windowsize: 16, servers: ['sidereal'] },
  { name: 'atftp blksize 8192 windowsize 1', client: 'atftp', blksize: 8192, windowsize: 1, servers: ['sidereal', 'tftpd-hpa'] },
  { name: 'atftp blksize 8192 windowsize 8', client: 'atftp', blksize: 8192, windowsize: 8, servers: ['sidereal', 'tftpd-hpa'] },
];

const started: ResultPromise[] = [];

async function stopProcess(p: ResultPromise): Promise<void> {
  if (p.pid === undefined || p.exitCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await p.catch(() => {});
  clearTimeout(t);
}

/** Wait for a line on stdout matching `re`, bounded. */
function waitFor(p: ResultPromise, re: RegExp, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms: ${buf}`)), ms);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) { clearTimeout(t); resolve(); }
    });
    p.then((r) => { clearTimeout(t); reject(new Error(`${what} exited (${r.exitCode}): ${r.stderr}`)); }, () => {});
  });
}

/** tftpd-hpa prints nothing when ready: poll with a tiny file until it answers. */
async function waitForTftp(ns: string, port: number, file: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await nsExec(ns, 'curl', ['-sS', '--max-time', '2', '-o', '/dev/null', `tftp://${ADDR}:${port}/${file}`], { reject: false });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`nothing answers TFTP on ${ADDR}:${port}`);
}

async function fetchOnce(ns: string, c: Case, port: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (c.client === 'curl') {
    const r = await nsExec(ns, 'curl', ['-sS', '--max-time', String(CLIENT_TIMEOUT_MS / 1000), '--tftp-blksize', String(c.blksize),
      '-o', '/dev/null', '-w', '%{size_download}', `tftp://${ADDR}:${port}/big.bin`], { reject: false, timeout: CLIENT_TIMEOUT_MS + 5000 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.exitCode !== 0 || Number(r.stdout) !== SIZE) throw new Error(`curl ${c.name} on ${port}: exit ${r.exitCode}, ${r.stdout} bytes, ${r.stderr}`);
    return secs;
  }
  const out = path.join(SCRATCH, `sidereal-bench-${process.pid}.out`);
  try {
    const opts = ['--option', `blksize ${c.blksize}`, '--option', 'tsize 0', '--option', `windowsize ${c.windowsize ?? 1}`];
    const r = await nsExec(ns, 'atftp', ['--get', '-r', 'big.bin', '-l', out, ...opts, ADDR, String(port)],
      { reject: false, timeout: CLIENT_TIMEOUT_MS });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const size = await stat(out).then((s) => s.size, () => -1);
    if (r.exitCode !== 0 || size !== SIZE) throw new Error(`atftp ${c.name} on ${port}: exit ${r.exitCode}, ${size} bytes, ${r.stdout}${r.stderr}`);
    return secs;
  } finally {
    await rm(out, { force: true });
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const mbps = (secs: number) => SIZE / secs / 1e6;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sidereal-bench-tftp-'));
  let ns: string | null = null;
  try {
    // in.tftpd drops to user nobody: the tree must be world-readable.
    await chmod(dir, 0o755);
    const parts: Buffer[] = [];
    for (let left = SIZE; left > 0; left -= 1 << 20) parts.push(randomBytes(Math.min(left, 1 << 20)));
    await writeFile(path.join(dir, 'big.bin'), Buffer.concat(parts), { mode: 0o644 });
    parts.length = 0;
    await writeFile(path.join(dir, 'ready.txt'), 'ok\n', { mode: 0o644 });

    ns = await createNs('tftpb');
    // in.tftpd resolves its -a address with AI_ADDRCONFIG, which fails when
    // the only IPv4 address is on lo (exit 66): give the namespace one more,
    // on a veth pair whose both ends stay in the namespace (no dummy module here).
    await ip('-n', ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
    await ip('-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'bench0');
    await ip('-n', ns, 'link', 'set', 'bench0', 'up');
    await ip('-n', ns, 'link', 'set', 'bench1', 'up');
    const ours = nsSpawn(ns, process.execPath, [path.join(here, 'tftp-runner.js'), '--root', dir, '--address', ADDR, '--port', String(OUR_PORT)],
      { env: { SIDEREAL_LOG_LEVEL: 'warn' }, buffer: false, stdout: 'pipe', stderr: 'inherit' });
    started.push(ours);
    await waitFor(ours, /READY \d+/, 20_000, 'sidereal tftp-runner');
    const hpa = nsSpawn(ns, '/usr/sbin/in.tftpd', ['-L', '-s', dir, '-a', `${ADDR}:${HPA_PORT}`], { stdout: 'ignore', stderr: 'inherit' });
    started.push(hpa);
    await waitForTftp(ns, HPA_PORT, 'ready.txt');

    const results: Array<{ case: string; server: Server; seconds: number[]; mbps: { median: number; min: number; max: number } }> = [];
    for (const c of CASES) {
      // Runs alternate between the servers so a slow spell of this shared machine hits both alike.
      const seconds = new Map<Server, number[]>(c.servers.map((s) => [s, []]));
      for (let i = 0; i < RUNS; i++) {
        for (const server of c.servers) seconds.get(server)!.push(await fetchOnce(ns, c, server === 'sidereal' ? OUR_PORT : HPA_PORT));
      }
      for (const server of c.servers) {
        const rates = seconds.get(server)!.map(mbps);
        results.push({ case: c.name, server, seconds: seconds.get(server)!, mbps: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) } });
        process.stderr.write(`${c.name} ${server}: ${rates.map((r) => r.toFixed(1)).join(' ')} MB/s\n`);
      }
    }

    const fmt = (r?: (typeof results)[number]) => (r ? `${r.mbps.median.toFixed(1)} (${r.mbps.min.toFixed(1)}-${r.mbps.max.toFixed(1)})` : 'n/a');
    const rows = CASES.map((c) => {
      const a = results.find((r) => r.case === c.name && r.server === 'sidereal');
      const b = results.find((r) => r.case === c.name && r.server === 'tftpd-hpa');
      return { case: c.name, sidereal: fmt(a), hpa: fmt(b), ratio: a && b ? (a.mbps.median / b.mbps.median).toFixed(2) : 'n/a' };
    });
    const w = [34, 22, 22, 6];
    const line = (cols: string[]) => cols.map((s, i) => s.padEnd(w[i]!)).join(' | ');
    console.log(`\nTFTP ${SIZE / 1048576} MiB, ${RUNS} runs each, MB/s median (min-max), namespace loopback`);
    console.log(line(['case', 'sidereal', 'tftpd-hpa', 'ratio']));
    console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
    for (const r of rows) console.log(line([r.case, r.sidereal, r.hpa, r.ratio]));
    console.log('(tftpd-hpa ignores windowsize: its windowsize rows are lock-step)');

    const hpaVersion = (await execa('/usr/sbin/in.tftpd', ['-V'], { reject: false })).stdout.split('\n')[0];
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const resultsDir = path.resolve(here, '../../bench/results');
    await mkdir(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `tftp-${stamp}.json`);
    await writeFile(file, JSON.stringify({
      date: new Date().toISOString(), sizeBytes: SIZE, runs: RUNS, transport: 'namespace loopback 127.0.0.1 (MTU 65536)',
      node: process.version, kernel: release(), cpu: cpus()[0]?.model, cpus: cpus().length, tftpdHpa: hpaVersion,
      results, table: rows,
    }, null, 2) + '\n');
    console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
  } finally {
    for (const p of started) await stopProcess(p);
    await destroyAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
