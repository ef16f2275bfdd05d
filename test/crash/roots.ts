/**
 * The root build in the crash rounds (issue 7): a live generation of bookworm-minimal is built
 * first, for real; each round then starts a rebuild, and the kill lands at a random point of
 * it. After each restart, `checkRoots` asks what an admin relies on: no mount left under the
 * roots, no process of a build left running, no build still "running", no generation left
 * that no succeeded build made, `current` a whole generation, and the HTTP server serving its
 * kernel and initrd byte for byte (a rebuild that finished before the kill is live then).
 * The daemon's API is reached inside its namespace, through `curl`.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { mountsUnder } from '../../server/roots/mounts.js';
import { BUILD_TAG } from '../../server/roots/owner.js';
import { readGenerationInfo } from '../../server/roots/publish.js';
import { nsExec } from '../helpers/netns.js';
import { repoRoot } from '../helpers/serve.js';

export const ROOT = 'bookworm-minimal';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RootsSetup { rootsDir: string; recipes: string; tftpRoot: string }

/** The config's `roots` section: a roots dir of the campaign's own, (the package cache is crash.ts's own). */
export function rootsSetup(dir: string, tftpRoot: string): RootsSetup {
  const recipes = join(dir, 'recipes');
  mkdirSync(recipes, { recursive: true });
  copyFileSync(join(repoRoot, 'roots', `${ROOT}.yaml`), join(recipes, `${ROOT}.yaml`));
  return { rootsDir: join(dir, 'roots'), recipes, tftpRoot };
}

export interface BuildRow { id: number; state: string; step: string | null; generation: string | null; error?: string | null }

export class DaemonApi {
  constructor(private ns: string, private base: string, private token: string) {}

  async call<T>(method: string, path: string): Promise<{ status: number; body: T }> {
    const r = await nsExec(this.ns, 'curl', ['-s', '-X', method, '-H', `authorization: Bearer ${this.token}`, '-w', '\n%{http_code}', this.base + path], { reject: false, timeout: 20_000 });
    const out = String(r.stdout);
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)), body: JSON.parse(out.slice(0, cut) || 'null') as T };
  }

  async startBuild(): Promise<BuildRow> {
    const r = await this.call<BuildRow & { message?: string }>('POST', `/api/v1/roots/${ROOT}/builds`);
    if (r.status !== 202) throw new Error(`build refused (${r.status}): ${r.body?.message}`);
    return r.body;
  }

  async builds(): Promise<BuildRow[]> {
    return (await this.call<{ items: BuildRow[] }>('GET', `/api/v1/builds?root=${ROOT}&limit=500`)).body.items;
  }

  /** Waits for a build to end; its row then. */
  async waitBuild(id: number, ms: number): Promise<BuildRow> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const b = (await this.call<BuildRow>('GET', `/api/v1/builds/${id}`)).body;
      if (b.state !== 'queued' && b.state !== 'running') return b;
      await sleep(1000);
    }
    throw new Error(`build ${id} still running after ${ms} ms`);
  }
}

/** PIDs of any process a build of this roots dir started (its environment names the generation). */
async function buildLeftovers(rootsDir: string): Promise<number[]> {
  const prefix = `${BUILD_TAG}=${rootsDir}/`;
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if ((await readFile(`/proc/${e}/environ`, 'latin1')).split('\0').some((v) => v.startsWith(prefix))) pids.push(Number(e));
    } catch { /* gone, or a kernel thread */ }
  }
  return pids;
}

/**
 * The builds need the Debian mirror, and the daemon's namespace has no way out: an HTTP proxy
 * here, on a unix socket, that forwards plain GETs to `hosts` alone (apt's and mmdebstrap's
 * requests: absolute URIs, roots.proxy in the config); test/crash/proxy-bridge.ts brings it
 * into the namespace. Returns its close().
 */
export async function startMirrorProxy(socketPath: string, hosts: string[]): Promise<() => Promise<void>> {
  const server = http.createServer((req, res) => {
    let target: URL;
    try { target = new URL(req.url ?? ''); } catch { res.writeHead(400).end(); return; }
    if (target.protocol !== 'http:' || !hosts.includes(target.hostname) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(403).end(`only GET of ${hosts.join(', ')}`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    const up = http.request(target, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.setTimeout(60_000, () => up.destroy());
    up.end();
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * What is wrong with the roots after a restart (empty: nothing). `httpBase`: the daemon's boot
 * HTTP server, fetched from inside `ns`.
 */
export async function checkRoots(api: DaemonApi, s: RootsSetup, ns: string, httpBase: string): Promise<string[]> {
  const problems: string[] = [];
  const mounts = await mountsUnder(s.rootsDir);
  if (mounts.length) problems.push(`mounts left: ${mounts.join(' ')}`);
  const pids = await buildLeftovers(s.rootsDir);
  if (pids.length) problems.push(`build processes left: ${pids.join(' ')}`);
  const builds = await api.builds();
  const active = builds.filter((b) => b.state === 'queued' || b.state === 'running');
  if (active.length) problems.push(`builds still active after the restart: ${active.map((b) => b.id).join(' ')}`);

  const base = join(s.rootsDir, ROOT);
  const made = new Set(builds.filter((b) => b.state === 'succeeded').map((b) => b.generation));
  const stray = readdirSync(base).filter((n) => /^gen-[^.]+$/.test(n) && !made.has(n));
  if (stray.length) problems.push(`generations no succeeded build made: ${stray.join(' ')}`);
  const current = readlinkSync(join(base, 'current'));
  if (!made.has(current)) problems.push(`current is ${current}, which no succeeded build made`);
  const info = await readGenerationInfo(s.rootsDir, ROOT, current);
  if (!info) {
    problems.push(`current (${current}) has no generation info`);
    return problems;
  }
  for (const f of info.files) {
    const want = sha(readFileSync(join(base, current, f.from)));
    const got = await nsExec(ns, 'sh', ['-c', `curl -sf ${httpBase}/files/${encodeURIComponent(f.name)} | sha256sum`], { reject: false });
    if (!String(got.stdout).startsWith(want)) problems.push(`${f.name} served over HTTP is not ${current}/${f.from}`);
  }
  return problems;
}
