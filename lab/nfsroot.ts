/**
 * The lab's real root: `roots/bookworm-minimal.yaml` built by Sidereal's own builder into
 * /var/cache/sidereal-lab/roots (kept between runs, like the lab kernel), served over NFS by
 * nfs-ganesha in the lab namespace. Rebuilt when the recipe, the dracut module, the root's
 * files or the build plan change (a hash of them is kept beside the root); otherwise the cached
 * generation is published into this run's TFTP root and registered, in seconds.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activateGeneration } from '../server/roots/publish.js';
import { currentGeneration, rootDir } from '../server/roots/generations.js';
import { repoRoot, siderealCli } from './sidereal.js';

export const LAB_ROOT = 'bookworm-minimal';
export const LAB_ROOTS_DIR = '/var/cache/sidereal-lab/roots';

/** What a build of the lab root depends on, hashed. */
export function labRootHash(): string {
  const h = createHash('sha256');
  const add = (p: string) => {
    const abs = path.join(repoRoot(), p);
    if (statSync(abs).isDirectory()) for (const f of readdirSync(abs).sort()) add(path.join(p, f));
    else h.update(p).update(readFileSync(abs));
  };
  for (const p of [`roots/${LAB_ROOT}.yaml`, 'boot-templates/dracut', 'boot-templates/root', 'server/roots/plan.ts', 'server/roots/recipe.ts']) {
    // plan.ts and recipe.ts are sources: from dist/ they are not there, and then the recipe and templates decide.
    if (existsSync(path.join(repoRoot(), p))) add(p);
  }
  return h.digest('hex').slice(0, 16);
}

export interface LabRoot {
  generation: string;
  /** True when this call built it (minutes); false when the cached one was reused. */
  built: boolean;
  seconds: number;
}

/**
 * Make `bookworm-minimal` a root of the Sidereal whose config is `configFile` (its roots.dir
 * must be LAB_ROOTS_DIR), building it when the cached one is missing or stale.
 */
export async function ensureLabRoot(configFile: string, tftpRoot: string, onProgress?: (line: string) => void): Promise<LabRoot> {
  const t0 = Date.now();
  const hashFile = path.join(rootDir(LAB_ROOTS_DIR, LAB_ROOT), '.lab-hash');
  const want = labRootHash();
  const cur = await currentGeneration(LAB_ROOTS_DIR, LAB_ROOT);
  const have = existsSync(hashFile) ? readFileSync(hashFile, 'utf8').trim() : '';
  if (cur && have === want) {
    await activateGeneration({
      rootsDir: LAB_ROOTS_DIR, tftpRoot, name: LAB_ROOT, generation: cur,
      register: async (r) => {
        await siderealCli(configFile, ['root', 'add', r.name, '--arch', r.arch, '--kernel', r.kernel, '--initrd', r.initrd,
          '--nfs-path', r.nfsPath, '--kernel-args', r.kernelArgs]);
      },
    });
    return { generation: cur, built: false, seconds: (Date.now() - t0) / 1000 };
  }
  onProgress?.(`building the lab root ${LAB_ROOT} (debootstrap, packages, kernel, dracut: a few minutes)...`);
  await siderealCli(configFile, ['root', 'build', LAB_ROOT], 40 * 60_000);
  const gen = await currentGeneration(LAB_ROOTS_DIR, LAB_ROOT);
  if (!gen) throw new Error(`the build of ${LAB_ROOT} left no current generation under ${LAB_ROOTS_DIR}`);
  await writeFile(hashFile, `${want}\n`);
  return { generation: gen, built: true, seconds: (Date.now() - t0) / 1000 };
}
