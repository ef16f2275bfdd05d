/**
 * A real root build, twice: `roots/bookworm-minimal.yaml` (or --recipe) into a temporary roots
 * dir, first with an empty package cache (unless --cache-dir is given and warm), then again with
 * the cache warm (a rebuild: a new generation, `current` switched). Prints seconds and sizes per
 * build and removes its temporary dirs at the end (the cache too, unless --cache-dir was given).
 * Needs root, debootstrap and the Debian mirror.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/root-build.js [--recipe roots/x.yaml] [--cache-dir DIR] [--keep] [--builds 2]
 */
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { buildRoot, type BuildResult } from '../server/roots/build.js';
import { listGenerations } from '../server/roots/generations.js';
import { mountsUnder } from '../server/roots/mounts.js';
import { loadRecipe } from '../server/roots/recipe.js';
import { run, abortOnSignals } from '../server/run.js';

const { values } = parseArgs({
  options: {
    recipe: { type: 'string', default: 'roots/bookworm-minimal.yaml' },
    'cache-dir': { type: 'string' },
    'work-dir': { type: 'string' },
    builds: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

if (process.getuid?.() !== 0) {
  console.error('root-build: needs root (debootstrap, chroot, mount)');
  process.exit(2);
}

const logger = pino({ level: values.verbose ? 'info' : 'warn' });
const recipe = loadRecipe(path.resolve(values.recipe!));
const work = values['work-dir'] ?? (await mkdtemp(path.join(tmpdir(), 'sidereal-build-')));
const rootsDir = path.join(work, 'roots');
const tftpRoot = path.join(work, 'tftp');
const cacheDir = values['cache-dir'] ? path.resolve(values['cache-dir']) : path.join(work, 'cache');
const { signal, dispose } = abortOnSignals();

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const results: BuildResult[] = [];
let failed = false;
try {
  for (let i = 0; i < Number(values.builds); i++) {
    let last = '';
    const r = await buildRoot({
      recipe, rootsDir, tftpRoot, cacheDir, logger, signal,
      onProgress: (step, fraction) => {
        if (step.id !== last) process.stderr.write(`  [${(fraction * 100).toFixed(0).padStart(3)}%] ${step.id}: ${step.title}\n`);
        last = step.id;
      },
    });
    results.push(r);
    // The root's own lsinitrd (the build server need not have dracut).
    const lsinitrd = await run(['chroot', r.generationDir, 'lsinitrd', `/boot/initrd.img-${r.kver}`], { logger, reject: false });
    const hasOverlay = lsinitrd.stdout.includes('overlay.ko');
    const hasHook = lsinitrd.stdout.includes('sidereal-mount.sh');
    const current = await readlink(path.join(rootsDir, recipe.name, 'current'));
    console.log(`build ${i + 1} (${i === 0 ? 'first' : 'rebuild, warm cache'}): ${r.seconds.toFixed(1)} s, tree ${mib(r.sizes.treeBytes)}, `
      + `initrd ${mib(r.sizes.initrdBytes)}, kver ${r.kver}, ${r.kernel} + ${r.initrd}; current -> ${current}; `
      + `lsinitrd: overlay.ko ${hasOverlay ? 'yes' : 'NO'}, sidereal-mount.sh ${hasHook ? 'yes' : 'NO'}`);
    if (!hasOverlay || !hasHook) failed = true;
  }
  const gens = await listGenerations(rootsDir, recipe.name);
  console.log(`generations: ${gens.map((g) => `${g.name}${g.current ? ' (current)' : ''}`).join(', ')}`);
} catch (e) {
  failed = true;
  console.error(`root-build: ${(e as Error).message}`);
} finally {
  dispose();
  const left = await mountsUnder(work).catch(() => []);
  if (left.length > 0) {
    console.error(`root-build: still mounted: ${left.map((m) => m.mountPoint).join(', ')}`);
    failed = true;
  } else if (!values.keep) {
    await rm(work, { recursive: true, force: true });
  } else {
    console.log(`kept ${work}`);
  }
}
process.exit(failed ? 1 : 0);
