/**
 * A real build of roots/bookworm-minimal.yaml (debootstrap, apt, kernel, dracut in the chroot):
 * needs root, debootstrap and the Debian mirror; about 5 minutes cold, less with the package
 * cache in /var/cache/sidereal-build warm (kept between runs on purpose). Skipped when not root,
 * except under CI, where a skip would hide a failure.
 *
 * Asserts: the initrd lists overlay.ko and the sidereal hook, kernel and initrd are published
 * 0644 as *@bookworm-minimal, `current` points at the new generation; then a build with a
 * package that does not exist fails naming the `packages` step, removes its generation, leaves
 * `current` alone; and nothing stays mounted.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { BuildError, buildRoot, type BuildResult } from '../../server/roots/build.js';
import { mountsUnder, readMountinfo } from '../../server/roots/mounts.js';
import { loadRecipe } from '../../server/roots/recipe.js';
import { run } from '../../server/run.js';

const hasDebootstrap = ['/usr/sbin/debootstrap', '/sbin/debootstrap'].some((p) => existsSync(p));
const runnable = process.getuid?.() === 0 && hasDebootstrap;
if (!runnable && process.env.CI) throw new Error('CI must run the root build test: needs root and debootstrap');

const CACHE = '/var/cache/sidereal-build';
const quiet = pino({ level: 'silent' });
const recipe = loadRecipe(path.resolve('roots/bookworm-minimal.yaml'));
let work = '';

describe.skipIf(!runnable)('root build: bookworm-minimal, for real', () => {
  let first: BuildResult;
  const rootsDir = () => path.join(work, 'roots');
  const tftpRoot = () => path.join(work, 'tftp');

  afterAll(async () => {
    if (!work) return;
    const left = await mountsUnder(work).catch(() => []);
    if (left.length === 0) await rm(work, { recursive: true, force: true });
  });

  it('builds, checks the initrd, publishes 0644 @name and switches current', async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sidereal-root-build-'));
    first = await buildRoot({ recipe, rootsDir: rootsDir(), tftpRoot: tftpRoot(), cacheDir: CACHE, logger: quiet });

    expect(first.kernel).toBe(`vmlinuz-${first.kver}@bookworm-minimal`);
    expect(first.initrd).toBe(`initrd.img-${first.kver}@bookworm-minimal`);
    for (const f of [first.kernel, first.initrd]) {
      expect((await stat(path.join(tftpRoot(), f))).mode & 0o777).toBe(0o644);
    }
    // The root's own lsinitrd (the build server need not have dracut).
    const listing = (await run(['chroot', first.generationDir, 'lsinitrd', `/boot/initrd.img-${first.kver}`], { logger: quiet })).stdout;
    expect(listing).toContain('overlay.ko');
    expect(listing).toContain('sidereal-mount.sh');
    expect(listing).toMatch(/modules\.d\/90sidereal|hooks\/pre-pivot\/90-sidereal-mount\.sh/);

    expect(await readlink(path.join(rootsDir(), recipe.name, 'current'))).toBe(first.generation);
    expect(existsSync(path.join(first.generationDir, 'usr/sbin/policy-rc.d'))).toBe(false);
    expect(existsSync(path.join(first.generationDir, 'etc/hostname'))).toBe(false);
    expect(first.sizes.treeBytes).toBeGreaterThan(100 * 2 ** 20);
    expect(first.sizes.initrdBytes).toBeGreaterThan(2 ** 20);
    expect(await mountsUnder(work)).toEqual([]);
  }, 1_800_000);

  it('a bad package fails naming the step, removes its generation, leaves current', async () => {
    expect(first, 'the first build must have succeeded').toBeDefined();
    const bad = { ...recipe, packages: { include: ['no-such-package-xyz'], exclude: [] } };
    const before = await readdir(path.join(rootsDir(), recipe.name));
    const err = await buildRoot({ recipe: bad, rootsDir: rootsDir(), tftpRoot: tftpRoot(), cacheDir: CACHE, logger: quiet })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).step).toBe('packages');
    expect((err as Error).message).toMatch(/step packages/);
    expect(await readlink(path.join(rootsDir(), recipe.name, 'current'))).toBe(first.generation);
    expect((await readdir(path.join(rootsDir(), recipe.name))).sort()).toEqual(before.sort());
    expect(await mountsUnder(work)).toEqual([]);
    expect((await readMountinfo()).filter((m) => m.mountPoint.includes('sidereal-root-build-'))).toEqual([]);
  }, 1_200_000);
});
