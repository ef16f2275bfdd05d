/**
 * Real root builds of roots/bookworm-minimal.yaml as an admin runs them: through `sidereal serve`
 * and the CLI, with the package cache in /var/cache/sidereal-build warm between runs (about
 * 2 minutes a build then; twice that cold). Needs root and debootstrap; under CI a skip would
 * hide a failure, so it fails instead.
 *
 *  1. `root build` (CLI, following) succeeds: the initrd lists overlay.ko and the hook, kernel
 *     and initrd are published 0644 as *@bookworm-minimal, the root is registered with
 *     nfsPath .../current; meanwhile the SSE stream carries every step in order and a second
 *     build is refused (409).
 *  2. A recipe naming a package that does not exist: the build fails naming step `packages`, its
 *     log is kept, its generation removed, the live one untouched; the same for a post-install
 *     command that fails (step `post-install`).
 *  3. kill -9 of the daemon in the middle of a chroot step; the restarted daemon marks the build
 *     failed, stops what it left running, unmounts, removes the generation; live root untouched.
 *  4. `root cancel` during the bootstrap: the following CLI exits 1, the generation is gone.
 *  5. A rebuild succeeds and the older generations beyond keepGenerations are pruned; then
 *     `root rollback` makes the first generation live again, its own initrd republished.
 */
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../server/roots/mounts.js';
import { buildProcesses } from '../../server/roots/owner.js';
import { readEventStream } from '../../server/cli/api-client.js';
import { cli, repoRoot, siderealBin, startServe, writeConfig, type Served } from '../helpers/serve.js';

const hasDebootstrap = ['/usr/sbin/debootstrap', '/sbin/debootstrap'].some((p) => existsSync(p));
const runnable = process.getuid?.() === 0 && hasDebootstrap;
if (!runnable && process.env.CI) throw new Error('CI must run the root build test: needs root and debootstrap');

const ROOT = 'bookworm-minimal';
const API = 'http://127.0.0.1:18091';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!runnable)('root builds through the daemon, for real', () => {
  let work = '';
  let config = '';
  let token = '';
  let served: Served | undefined;
  const rootsDir = () => path.join(work, 'roots');
  const tftp = () => path.join(work, 'tftp');
  const recipeFile = () => path.join(work, 'recipes', `${ROOT}.yaml`);
  const current = () => readlinkSync(path.join(rootsDir(), ROOT, 'current'));
  const gens = () => readdirSync(path.join(rootsDir(), ROOT)).filter((n) => /^gen-[^.]+$/.test(n)).sort();

  const api = async (method: string, url: string, body?: unknown) => {
    const r = await fetch(API + url, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  /** The CLI against the daemon's API, run to the end (a build takes minutes). */
  const sidereal = (...args: string[]) => execa(process.execPath, [siderealBin, '--config', config, '--url', API, ...args], {
    reject: false, timeout: 1_200_000, env: { SIDEREAL_TOKEN: token },
  });
  /** Run `fn` with the recipe file edited by `edit`; the good recipe is back afterwards, whatever happens. */
  const withRecipe = async (edit: (text: string) => string, fn: () => Promise<void>) => {
    const good = readFileSync(recipeFile(), 'utf8');
    writeFileSync(recipeFile(), edit(good));
    try {
      await fn();
    } finally {
      writeFileSync(recipeFile(), good);
    }
  };
  /** A failed build changed nothing: the same live generation, no other tree left, nothing mounted. */
  const expectLiveUntouched = async () => {
    expect(current()).toBe(first);
    expect(gens()).toEqual([first]);
    expect(await mountsUnder(work)).toEqual([]);
  };
  const waitForBuild = async (id: number, pred: (b: Record<string, unknown>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const b = (await api('GET', `/api/v1/builds/${id}`)).body;
      if (pred(b)) return b;
      await sleep(250);
    }
    throw new Error(`build ${id}: condition not met in ${ms} ms`);
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sidereal-build-jobs-'));
    mkdirSync(path.join(work, 'recipes'));
    mkdirSync(tftp());
    copyFileSync(path.join(repoRoot, 'roots', `${ROOT}.yaml`), recipeFile());
    config = writeConfig(path.join(work, 'sidereal.yaml'), {
      serverAddress: '127.0.0.1', dataDir: path.join(work, 'data'),
      dhcp: { enabled: false, subnet: '127.0.0.0/24' }, tftp: { enabled: false, root: tftp() },
      http: { listen: '127.0.0.1', port: 18090 }, api: { listen: '127.0.0.1', port: 18091 },
      roots: { dir: rootsDir(), cacheDir: '/var/cache/sidereal-build', recipes: path.join(work, 'recipes') },
    });
    const made = await cli(config, '--json', 'token', 'create', '--name', 'builder', '--role', 'admin');
    expect(made.code, made.stderr).toBe(0);
    token = JSON.parse(made.stdout).token;
    // On this host, not in a namespace (the daemon must see and undo the mounts here); loopback only.
    served = await startServe(null, config);
  }, 60_000);

  afterAll(async () => {
    await served?.stop();
    if (!work) return;
    const left = await mountsUnder(work).catch(() => []);
    if (left.length === 0) await rm(work, { recursive: true, force: true });
  });

  let first = '';
  let firstInitrd: Buffer;

  it('builds with the CLI following, streams every step, refuses a second build, registers the root', async () => {
    const following = sidereal('root', 'build', ROOT);
    // The build the CLI started: watch it over SSE as another client would.
    let id = 0;
    for (let i = 0; i < 100 && !id; i++) {
      const { body } = await api('GET', `/api/v1/builds?root=${ROOT}`);
      id = ((body.items as Array<{ id: number }>)[0]?.id) ?? 0;
      if (!id) await sleep(100);
    }
    expect(id).toBeGreaterThan(0);
    const second = await api('POST', `/api/v1/roots/${ROOT}/builds`);
    expect(second.status).toBe(409);
    expect(second.body.message).toContain(`build ${id}`);

    const events: Array<[string, Record<string, unknown>]> = [];
    const res = await fetch(`${API}/api/v1/builds/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    await readEventStream(res.body as unknown as AsyncIterable<Uint8Array>, (e, d) => events.push([e, d as Record<string, unknown>]));

    const r = await following;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`built ${ROOT} gen-\\S+ in \\d+ s: vmlinuz-\\S+@${ROOT}, initrd.img-\\S+@${ROOT}`));
    expect(r.stderr).toMatch(/bootstrap: (mmdebstrap|debootstrap) bookworm amd64/);
    expect(r.stderr).toContain('publish:');

    expect(events[0]![0]).toBe('build');
    const steps = events.filter(([e]) => e === 'step').map(([, d]) => d.step);
    for (const s of ['packages', 'kernel', 'initrd', 'check-initrd', 'publish']) expect(steps).toContain(s);
    expect(steps.indexOf('initrd')).toBeLessThan(steps.indexOf('publish'));
    expect(events.some(([e]) => e === 'log')).toBe(true);
    const end = events[events.length - 1]!;
    expect(end[0]).toBe('end');
    expect(end[1]).toMatchObject({ state: 'succeeded', progress: 1 });

    const build = (await api('GET', `/api/v1/builds/${id}`)).body as { generation: string; result: { kver: string; kernel: string; initrd: string; treeBytes: number; initrdBytes: number } };
    first = build.generation;
    const { kver } = build.result;
    expect(current()).toBe(first);
    const tree = path.join(rootsDir(), ROOT, first);
    const listing = (await execa('chroot', [tree, 'lsinitrd', `/boot/initrd.img-${kver}`])).stdout;
    expect(listing).toContain('overlay.ko');
    expect(listing).toMatch(/hooks\/pre-pivot\/90-sidereal-mount\.sh|modules\.d\/90sidereal/);
    for (const f of [build.result.kernel, build.result.initrd]) expect(statSync(path.join(tftp(), f)).mode & 0o777).toBe(0o644);
    firstInitrd = readFileSync(path.join(tftp(), build.result.initrd));
    expect(existsSync(path.join(tree, 'usr/sbin/policy-rc.d'))).toBe(false);
    expect(existsSync(path.join(tree, 'etc/hostname'))).toBe(false);
    expect(build.result.treeBytes).toBeGreaterThan(100 * 2 ** 20);

    const root = (await api('GET', `/api/v1/roots/${ROOT}`)).body;
    expect(root).toMatchObject({ kernel: build.result.kernel, initrd: build.result.initrd, nfsPath: path.join(rootsDir(), ROOT, 'current') });
    expect(await mountsUnder(work)).toEqual([]);
  }, 1_800_000);

  it('a package that does not exist fails the build at step packages; log kept, live root untouched', async () => {
    expect(first, 'the first build must have succeeded').not.toBe('');
    await withRecipe((good) => good.replace('  include: []', '  include: [no-such-package-xyz]'), async () => {
      const r = await sidereal('root', 'build', ROOT);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/failed at step packages/);
      expect(r.stderr).toContain('the live root is unchanged');
      const { body } = await api('GET', `/api/v1/builds?root=${ROOT}&limit=1`);
      const b = (body.items as Array<{ id: number; state: string; step: string }>)[0]!;
      expect(b).toMatchObject({ state: 'failed', step: 'packages' });
      const log = await sidereal('root', 'log', String(b.id));
      expect(log.stdout).toContain('no-such-package-xyz');
      await expectLiveUntouched();
    });
  }, 1_200_000);

  it('a post-install command that fails stops the build at step post-install, naming the command', async () => {
    expect(first).not.toBe('');
    await withRecipe((good) => `${good}\npostInstall:\n  - "echo preparing; exit 3"\n`, async () => {
      const r = await sidereal('--json', 'root', 'build', ROOT);
      expect(r.exitCode).toBe(1);
      const b = JSON.parse(r.stdout) as { state: string; step: string; error: string; id: number };
      expect(b).toMatchObject({ state: 'failed', step: 'post-install' });
      expect(b.error).toMatch(/step post-install .*exited with 3/);
      expect((await sidereal('root', 'log', String(b.id))).stdout).toContain('preparing');
      await expectLiveUntouched();
    });
  }, 1_200_000);

  it('kill -9 of the daemon mid-build: the restarted daemon marks it failed and cleans up', async () => {
    expect(first).not.toBe('');
    const rootRow = (await api('GET', `/api/v1/roots/${ROOT}`)).body;
    const { status, body } = await api('POST', `/api/v1/roots/${ROOT}/builds`);
    expect(status).toBe(202);
    const id = body.id as number;
    const running = await waitForBuild(id, (b) => b.step === 'packages' || b.state !== 'running', 600_000);
    expect(running.state).toBe('running');
    const genDir = path.join(rootsDir(), ROOT, running.generation as string);
    // In the chroot session: proc, sys, dev/pts mounted in the new tree.
    for (let i = 0; i < 100 && (await mountsUnder(genDir)).length < 3; i++) await sleep(100);
    expect((await mountsUnder(genDir)).length).toBeGreaterThanOrEqual(3);
    await sleep(2000); // apt is at work in the chroot
    process.kill(served!.proc.pid!, 'SIGKILL');
    await served!.proc;
    expect((await mountsUnder(genDir)).length).toBeGreaterThan(0); // left behind

    served = await startServe(null, config);
    const after = (await api('GET', `/api/v1/builds/${id}`)).body;
    expect(after.state).toBe('failed');
    expect(after.error).toMatch(/interrupted: .* died during step packages/);
    expect(await mountsUnder(work)).toEqual([]);
    expect(await buildProcesses(genDir)).toEqual([]);
    expect(existsSync(genDir)).toBe(false);
    expect(current()).toBe(first);
    expect((await api('GET', `/api/v1/roots/${ROOT}`)).body).toEqual(rootRow);
  }, 1_200_000);

  it('root cancel during the bootstrap: the follower exits 1, the generation is removed', async () => {
    const following = sidereal('root', 'build', ROOT);
    await sleep(500);
    let b: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !b; i++) {
      const items = (await api('GET', `/api/v1/builds?root=${ROOT}&limit=1`)).body.items as Array<Record<string, unknown>>;
      if (items[0] && items[0].state === 'running' && items[0].generation) b = items[0];
      else await sleep(100);
    }
    expect(b).toBeDefined();
    await sleep(3000);
    const c = await sidereal('root', 'cancel', ROOT);
    expect(c.exitCode, c.stderr).toBe(0);
    const r = await following;
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cancelled/);
    expect((await api('GET', `/api/v1/builds/${b!.id}`)).body.state).toBe('cancelled');
    expect(existsSync(path.join(rootsDir(), ROOT, b!.generation as string))).toBe(false);
    expect(current()).toBe(first);
    expect(await mountsUnder(work)).toEqual([]);
  }, 600_000);

  it('a rebuild goes live and prunes beyond keepGenerations; rollback brings the first back', async () => {
    const r = await sidereal('--json', 'root', 'build', ROOT);
    expect(r.exitCode, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as { generation: string; result: { initrd: string } };
    expect(current()).toBe(second.generation);
    expect(gens()).toEqual([first, second.generation]); // keepGenerations: 2

    const rb = await sidereal('root', 'rollback', ROOT);
    expect(rb.exitCode, rb.stderr).toBe(0);
    expect(rb.stdout).toContain(`now boots ${first}`);
    expect(current()).toBe(first);
    expect(readFileSync(path.join(tftp(), second.result.initrd)).equals(firstInitrd)).toBe(true);
    const list = await sidereal('root', 'generations', ROOT);
    expect(list.stdout).toMatch(new RegExp(`\\*\\s+${first}`));
    const audit = (await api('GET', `/api/v1/audit?target=${ROOT}`)).body.items as Array<{ action: string }>;
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['root.build', 'root.publish', 'root.build.cancel', 'root.rollback']));
  }, 1_800_000);
});
