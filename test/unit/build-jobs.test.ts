/**
 * Root build jobs without building: the API's refusals (no recipe, a bad recipe, no room, one
 * build per root), cancel of a queued build, crash recovery (a dead owner's build marked failed,
 * its tagged processes stopped and its half-built generation removed), rollback to an older
 * generation republishing that generation's own files, and the start-up repair of a root whose
 * row and `current` disagree. The real builds are in test/integration/root-build-jobs.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApiApp } from '../../server/http/api/app.js';
import { silentLogger } from '../../server/log.js';
import { BuildJobs } from '../../server/roots/jobs.js';
import { BUILD_TAG, ownerToken } from '../../server/roots/owner.js';
import { writeGenerationInfo } from '../../server/roots/publish.js';
import { alive } from '../helpers/procs.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';

let f: Fixture;
let app: FastifyInstance;
let jobs: BuildJobs;
let admin: string;
const recipes = () => path.join(f.dir, 'recipes');
const rootsDir = () => path.join(f.dir, 'roots');

beforeEach(() => {
  f = makeFixture((doc) => { doc.roots = { dir: path.join(doc.dataDir as string, '..', 'roots'), recipes: path.join(doc.dataDir as string, '..', 'recipes') }; });
  mkdirSync(recipes());
  jobs = new BuildJobs(f.inv, f.config, silentLogger());
  app = buildApiApp(f.inv, f.config, silentLogger(), { jobs });
  admin = f.inv.tokens.create('ops', 'admin').token;
});
afterEach(async () => {
  await app.close();
  await jobs.close();
  f.cleanup();
});

const call = (method: string, url: string, body?: unknown) => app.inject({
  method: method as 'GET', url,
  headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
  payload: body === undefined ? undefined : JSON.stringify(body),
});

const RECIPE = 'name: lab\nsuite: bookworm\narch: amd64\nmirror: http://deb.debian.org/debian\nlocale: C.UTF-8\ntimezone: Etc/UTC\n';

describe('asking for a build', () => {
  it('refuses a root without a recipe, naming the file', async () => {
    const r = await call('POST', '/api/v1/roots/nosuch/builds');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ field: 'name' });
    expect(r.json().message).toContain(path.join(recipes(), 'nosuch.yaml'));
  });

  it('refuses a bad recipe naming its key, and records nothing', async () => {
    writeFileSync(path.join(recipes(), 'lab.yaml'), RECIPE + 'pakages: [vim]\n');
    const r = await call('POST', '/api/v1/roots/lab/builds');
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: 'invalid', field: 'recipe.pakages' });
    writeFileSync(path.join(recipes(), 'lab.yaml'), RECIPE.replace('suite: bookworm\n', ''));
    expect((await call('POST', '/api/v1/roots/lab/builds')).json()).toMatchObject({ field: 'recipe.suite' });
    expect((await call('GET', '/api/v1/builds')).json().items).toEqual([]);
  });

  it('refuses a body with parameters', async () => {
    writeFileSync(path.join(recipes(), 'lab.yaml'), RECIPE);
    const r = await call('POST', '/api/v1/roots/lab/builds', { fast: true });
    expect(r.statusCode).toBe(400);
    expect(r.json().field).toBe('body');
  });

  it('refuses with 507 when the disk has less room than the last tree needs, saying how much', async () => {
    writeFileSync(path.join(recipes(), 'lab.yaml'), RECIPE);
    // A past build whose tree was 1 PiB: no disk here has 1.25 PiB free.
    const old = f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.start(old.id, 'x');
    f.inv.builds.finish(old.id, 'succeeded', { result: { kernel: 'k', initrd: 'i', kver: '6', seconds: 1, treeBytes: 2 ** 50, initrdBytes: 1, pruned: [] } });
    const r = await call('POST', '/api/v1/roots/lab/builds');
    expect(r.statusCode).toBe(507);
    expect(r.json()).toMatchObject({ error: 'insufficient_storage', field: 'disk' });
    expect(r.json().message).toMatch(/needs about 1310720\.0 GiB/);
    expect(f.inv.builds.list({ root: 'lab' })).toHaveLength(1);
  });

  it('one build per root: a second is refused naming the first; a queued one is cancelled at once', async () => {
    writeFileSync(path.join(recipes(), 'lab.yaml'), RECIPE);
    // Queued by another process (its row only): this queue does not run it.
    const b = f.inv.builds.create({ root: 'lab', recipe: path.join(recipes(), 'lab.yaml'), requestedBy: 'cli:x', logFile: () => '/dev/null' });
    const again = await call('POST', '/api/v1/roots/lab/builds');
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toContain(`build ${b.id} queued`);
    expect(() => f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 'y', logFile: () => '' })).toThrow(/already has build/);

    const c = await call('POST', `/api/v1/builds/${b.id}/cancel`);
    expect(c.statusCode).toBe(200);
    expect(c.json()).toMatchObject({ state: 'cancelled' });
    expect((await call('POST', `/api/v1/builds/${b.id}/cancel`)).statusCode).toBe(409);
    expect((await call('POST', '/api/v1/builds/999/cancel')).statusCode).toBe(404);
    expect(f.inv.audit.list({ limit: 5, target: 'lab' }).map((a) => a.action)).toContain('root.build.cancel');
  });

  it('a build another live process runs is flagged for it to cancel, never signalled', async () => {
    const b = f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.start(b.id, ownerToken(process.ppid)); // e.g. the daemon, seen from a --offline CLI
    const r = await call('POST', `/api/v1/builds/${b.id}/cancel`);
    expect(r.json()).toMatchObject({ state: 'running', cancelRequestedBy: 'token:ops' });
    expect(alive(process.ppid)).toBe(true);
  });

  it('streams an ended build as server-sent events: the record, then end', async () => {
    const b = f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.finish(b.id, 'failed', { error: 'boom' });
    const r = await call('GET', `/api/v1/builds/${b.id}/events`);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = r.body.split('\n\n').filter(Boolean).map((e) => e.split('\n')[0]);
    expect(events).toEqual(['event: build', 'event: end']);
    expect(r.body).toContain('"error":"boom"');
  });
});

describe('crash recovery', () => {
  it('marks a dead owner\'s build failed, stops its tagged processes and removes its generation', async () => {
    const genDir = path.join(rootsDir(), 'lab', 'gen-20261123T120000000Z');
    mkdirSync(path.join(genDir, 'etc'), { recursive: true });
    // A PID that existed and is gone: a finished child's.
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const deadToken = `${dead.pid}:1`;
    writeFileSync(path.join(rootsDir(), 'lab', '.gen-20261123T120000000Z.building'), `${deadToken}\n`);
    // What the build had started, still running after its parent died (debootstrap's place).
    const orphan = spawn('sleep', ['60'], { env: { ...process.env, [BUILD_TAG]: genDir }, detached: true, stdio: 'ignore' });
    const b = f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.start(b.id, deadToken);
    f.inv.builds.setStep(b.id, 'packages', 'install', 0.4);
    // A build whose owner lives (another process's --offline build) is left alone.
    const other = f.inv.builds.create({ root: 'other', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.start(other.id, ownerToken(process.ppid));

    const failed = await jobs.recover();
    expect(failed.map((x) => x.id)).toEqual([b.id]);
    expect(f.inv.builds.get(b.id)).toMatchObject({ state: 'failed' });
    expect(f.inv.builds.get(b.id)!.error).toMatch(/died during step packages/);
    expect(f.inv.builds.get(other.id)!.state).toBe('running');
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(orphan.pid!)).toBe(false);
    expect(existsSync(genDir)).toBe(false);
    expect(existsSync(path.join(rootsDir(), 'lab', '.gen-20261123T120000000Z.building'))).toBe(false);
  });
});

/** A generation as a build leaves it: a tree with /boot, its info file beside it. */
async function makeGeneration(gen: string, kver: string, content: string): Promise<void> {
  const dir = path.join(rootsDir(), 'lab', gen);
  mkdirSync(path.join(dir, 'boot'), { recursive: true });
  writeFileSync(path.join(dir, 'boot', `vmlinuz-${kver}`), `kernel ${content}`);
  writeFileSync(path.join(dir, 'boot', `initrd.img-${kver}`), `initrd ${content}`, { mode: 0o600 });
  await writeGenerationInfo(rootsDir(), gen, {
    root: 'lab', arch: 'amd64', kver, kernelArgs: 'console=ttyS0', overlay: 'tmpfs', builtAt: Date.now(),
    files: [{ from: `/boot/vmlinuz-${kver}`, name: `vmlinuz-${kver}@lab`, mode: 0o644 }, { from: `/boot/initrd.img-${kver}`, name: `initrd.img-${kver}@lab`, mode: 0o644 }],
  });
}

describe('a build killed after its generation went live', () => {
  it('is marked succeeded, its outcome read back from the generation, which stays live', async () => {
    const gen = 'gen-20261124T100000000Z';
    await makeGeneration(gen, '6.1.0-1-amd64', 'new');
    symlinkSync(gen, path.join(rootsDir(), 'lab', 'current'));
    writeFileSync(path.join(rootsDir(), 'lab', `.${gen}.building`), 'dead:1\n');
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const b = f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    f.inv.builds.start(b.id, `${dead.pid}:1`);
    f.inv.builds.setGeneration(b.id, gen);
    f.inv.builds.setStep(b.id, 'publish', 'publish', 0.99);

    expect(await jobs.recover()).toEqual([]);
    expect(f.inv.builds.get(b.id)).toMatchObject({
      state: 'succeeded', error: null, generation: gen,
      result: { kernel: 'vmlinuz-6.1.0-1-amd64@lab', initrd: 'initrd.img-6.1.0-1-amd64@lab', kver: '6.1.0-1-amd64' },
    });
    expect(f.inv.builds.get(b.id)!.result!.treeBytes).toBeGreaterThan(0);
    expect(readlinkSync(path.join(rootsDir(), 'lab', 'current'))).toBe(gen);
    expect(existsSync(path.join(rootsDir(), 'lab', gen))).toBe(true);
    expect(existsSync(path.join(rootsDir(), 'lab', `.${gen}.building`))).toBe(false);
  });
});

describe('rollback', () => {
  const G1 = 'gen-20261120T100000000Z';
  const G2 = 'gen-20261121T100000000Z';
  beforeEach(async () => {
    await makeGeneration(G1, '6.1.0-1-amd64', 'one');
    await makeGeneration(G2, '6.1.0-1-amd64', 'two');
    symlinkSync(G2, path.join(rootsDir(), 'lab', 'current'));
    const tftp = f.config.tftp.root;
    writeFileSync(path.join(tftp, 'vmlinuz-6.1.0-1-amd64@lab'), 'kernel two');
    writeFileSync(path.join(tftp, 'initrd.img-6.1.0-1-amd64@lab'), 'initrd two');
    f.inv.roots.put({ name: 'lab', arch: 'amd64', kernel: 'vmlinuz-6.1.0-1-amd64@lab', initrd: 'initrd.img-6.1.0-1-amd64@lab', nfsPath: path.join(rootsDir(), 'lab', 'current') });
  });

  it('goes back one generation, republishing its own kernel and initrd (same version), audited', async () => {
    const gens = (await call('GET', '/api/v1/roots/lab/generations')).json().items;
    expect(gens.map((g: { name: string; current: boolean }) => [g.name, g.current])).toEqual([[G1, false], [G2, true]]);

    const r = await call('POST', '/api/v1/roots/lab/rollback', {});
    expect(r.statusCode).toBe(200);
    expect(r.json().generation).toBe(G1);
    expect(readlinkSync(path.join(rootsDir(), 'lab', 'current'))).toBe(G1);
    expect(readFileSync(path.join(f.config.tftp.root, 'initrd.img-6.1.0-1-amd64@lab'), 'utf8')).toBe('initrd one');
    expect(readFileSync(path.join(f.config.tftp.root, 'vmlinuz-6.1.0-1-amd64@lab'), 'utf8')).toBe('kernel one');
    expect(f.inv.audit.list({ limit: 1, target: 'lab' })[0]).toMatchObject({ action: 'root.rollback', actor: 'token:ops' });

    // Nothing older than G1: refused, naming why; forward again by name works.
    const none = await call('POST', '/api/v1/roots/lab/rollback', {});
    expect(none.statusCode).toBe(409);
    expect(none.json().message).toMatch(/no generation older than/);
    expect((await call('POST', '/api/v1/roots/lab/rollback', { generation: 'gen-19990101T000000000Z' })).json()).toMatchObject({ field: 'generation' });
    expect((await call('POST', '/api/v1/roots/lab/rollback', { generation: G2 })).json().generation).toBe(G2);
    expect(readFileSync(path.join(f.config.tftp.root, 'initrd.img-6.1.0-1-amd64@lab'), 'utf8')).toBe('initrd two');
  });

  it('is refused while a build of the root runs', async () => {
    f.inv.builds.create({ root: 'lab', recipe: 'x', requestedBy: 't', logFile: () => '/dev/null' });
    const r = await call('POST', '/api/v1/roots/lab/rollback', {});
    expect(r.statusCode).toBe(409);
    expect(readlinkSync(path.join(rootsDir(), 'lab', 'current'))).toBe(G2);
  });

  it('at start, repairs a root whose row and files do not match current (a crash between the moves)', async () => {
    // As if the crash came after `current` moved to a generation with a new kernel, before the row followed.
    await makeGeneration('gen-20261122T100000000Z', '6.1.0-2-amd64', 'three');
    symlinkSync('gen-20261122T100000000Z', path.join(rootsDir(), 'lab', '.tmp'));
    const { renameSync } = await import('node:fs');
    renameSync(path.join(rootsDir(), 'lab', '.tmp'), path.join(rootsDir(), 'lab', 'current'));
    await jobs.recover();
    expect(f.inv.roots.get('lab')).toMatchObject({ kernel: 'vmlinuz-6.1.0-2-amd64@lab', initrd: 'initrd.img-6.1.0-2-amd64@lab' });
    expect(readFileSync(path.join(f.config.tftp.root, 'initrd.img-6.1.0-2-amd64@lab'), 'utf8')).toBe('initrd three');
  });
  it('at start, republishes current\'s files when a killed rebuild left its own under the same names', async () => {
    // A rebuild with the same kernel published its files, then was killed before `current` moved.
    writeFileSync(path.join(f.config.tftp.root, 'initrd.img-6.1.0-1-amd64@lab'), 'initrd of a killed rebuild');
    await jobs.recover();
    expect(readFileSync(path.join(f.config.tftp.root, 'initrd.img-6.1.0-1-amd64@lab'), 'utf8')).toBe('initrd two');
    expect(readFileSync(path.join(f.config.tftp.root, 'vmlinuz-6.1.0-1-amd64@lab'), 'utf8')).toBe('kernel two');
  });
});

describe('pruning generations', () => {
  it('keeps the newest N and current, and never one a machine may be running from', async () => {
    const { prune, listGenerations } = await import('../../server/roots/generations.js');
    const names = ['gen-20261101T000000000Z', 'gen-20261102T000000000Z', 'gen-20261103T000000000Z', 'gen-20261104T000000000Z'];
    for (const n of names) mkdirSync(path.join(rootsDir(), 'lab', n), { recursive: true });
    symlinkSync(names[3]!, path.join(rootsDir(), 'lab', 'current'));
    const booted = path.join(rootsDir(), 'lab', names[1]!);
    const removed = await prune(rootsDir(), 'lab', 1, (dir) => dir === booted);
    expect(removed).toEqual([names[0], names[2]]);
    expect((await listGenerations(rootsDir(), 'lab')).map((g) => g.name)).toEqual([names[1], names[3]]);
  });
});
