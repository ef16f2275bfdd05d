/**
 * A root built "by hand", as an admin following SIDUS (../shared/reference/SIDUS-NOTES.md) types
 * it: debootstrap, mount proc/sys/dev/pts, policy-rc.d, apt-get install, the kernel, dracut in the
 * chroot, unmount. Plain commands through server/run.ts, none of the build runner: the baseline
 * `bench/root-build.ts` prints beside Sidereal's builds.
 *
 * What it shares with Sidereal's plan, so the figures compare like with like: the same inputs
 * (package set = BOOT_PACKAGES + the recipe's, the same sources.list with updates and security,
 * the same dracut config and 90sidereal module, so the initrd is the same kind) and, by default,
 * the same WARM caches (debootstrap's --cache-dir, and the apt archive bind-mounted on
 * /var/cache/apt/archives). What it does not do: install dracut alone first, INITRD=No for the
 * kernel (the kernel's postinst runs dracut once, then the admin's dracut runs again, as SIDUS's
 * `dpkg-reconfigure dracut`), locale/timezone/node-identity files, generations, publishing.
 *
 * Always, in `finally`: policy-rc.d removed, everything under the tree unmounted (deepest first,
 * lazily if busy), checked with mountsUnder.
 */
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { run, type RunStream } from '../server/run.js';
import { mountsUnder, unmountAll } from '../server/roots/mounts.js';
import { CHROOT_ENV, DEFAULT_DRACUT_HOOK, DEFAULT_DRACUT_MODULE_DIR, dracutConf, sourcesList } from '../server/roots/plan.js';
import { BOOT_PACKAGES, type Recipe } from '../server/roots/recipe.js';

export interface ByHandOptions {
  recipe: Recipe;
  /** The tree to create (must not exist, or be empty). */
  rootDir: string;
  /** debootstrap --cache-dir (the same dir Sidereal's debootstrap builds use: `<cacheDir>/debootstrap`). */
  debootstrapCacheDir: string;
  /** Bind-mounted on the chroot's /var/cache/apt/archives; undefined: apt downloads, then `apt-get clean`. */
  aptCacheDir?: string;
  /** Where boot-templates/ is (the repo). */
  installDir: string;
  logger?: Logger;
  signal?: AbortSignal;
  onLine?: (line: string, stream: RunStream) => void;
  /** Called when a step starts. */
  onStep?: (name: string) => void;
}

export interface ByHandResult {
  seconds: number;
  kver: string;
  sizes: { treeBytes: number; initrdBytes: number };
  /** Seconds per step, in order. */
  steps: Array<{ step: string; seconds: number }>;
  /** Every command run, in order (what the admin typed). */
  commands: string[];
  initrdHas: { overlay: boolean; hook: boolean };
}

const APT_INSTALL = ['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold'];

export async function buildByHand(o: ByHandOptions): Promise<ByHandResult> {
  const t0 = process.hrtime.bigint();
  const { recipe: r, rootDir: root, logger, signal } = o;
  const commands: string[] = [];
  const steps: Array<{ step: string; seconds: number }> = [];
  const mounted: string[] = [];
  let policy = false;
  let stepName = '';
  let stepStart = 0;
  const step = (name: string) => {
    const now = performance.now();
    if (stepName) steps.push({ step: stepName, seconds: round1((now - stepStart) / 1000) });
    stepName = name;
    stepStart = now;
    if (name) o.onStep?.(name);
  };
  const sh = async (argv: string[], env?: Record<string, string>) => {
    commands.push(argv.map(quote).join(' '));
    return run(argv, {
      logger, signal, reject: true,
      ...(o.onLine ? { onLine: o.onLine } : {}),
      ...(env ? { env, extendEnv: false } : {}),
    });
  };
  const chroot = (argv: string[], extra: Record<string, string> = {}) => sh(['chroot', root, ...argv], { ...CHROOT_ENV, ...extra });
  const mount = async (argv: string[], at: string) => {
    await sh(['mount', ...argv, at]);
    mounted.push(at);
  };

  await mkdir(root, { recursive: true, mode: 0o755 });
  await mkdir(o.debootstrapCacheDir, { recursive: true, mode: 0o755 });
  let kver = '';
  let initrdHas = { overlay: false, hook: false };
  try {
    step('debootstrap');
    const pre = r.arch === 'i386' ? ['setarch', 'i686'] : [];
    await sh([...pre, 'debootstrap', `--arch=${r.arch}`, ...(r.variant === '-' ? [] : [`--variant=${r.variant}`]),
      `--components=${r.components.join(',')}`, ...(r.mirror.startsWith('https:') ? ['--include=ca-certificates'] : []),
      ...(r.packages.exclude.length ? [`--exclude=${r.packages.exclude.join(',')}`] : []),
      `--cache-dir=${o.debootstrapCacheDir}`, r.suite, root, r.mirror]);

    step('mount, policy-rc.d, sources.list, dracut config');
    await mount(['-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc'], path.join(root, 'proc'));
    await mount(['-t', 'sysfs', '-o', 'ro,nosuid,nodev,noexec', 'sysfs'], path.join(root, 'sys'));
    await mkdir(path.join(root, 'dev', 'pts'), { recursive: true });
    // A private devpts instance, not a bind of the host's (unmounting it can never touch the host's).
    await mount(['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec', 'devpts'], path.join(root, 'dev', 'pts'));
    if (o.aptCacheDir) {
      await mkdir(o.aptCacheDir, { recursive: true, mode: 0o755 });
      await mount(['--bind', o.aptCacheDir], path.join(root, 'var', 'cache', 'apt', 'archives'));
    }
    commands.push(`printf '#!/bin/sh\\nexit 101\\n' > ${root}/usr/sbin/policy-rc.d; chmod 755 ${root}/usr/sbin/policy-rc.d`);
    await writeFile(path.join(root, 'usr', 'sbin', 'policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    policy = true;
    commands.push(`cat > ${root}/etc/apt/sources.list  # ${r.suite}, -updates, -security`);
    await writeFile(path.join(root, 'etc', 'apt', 'sources.list'), sourcesList(r), { mode: 0o644 });
    commands.push(`cat > ${root}/etc/dracut.conf.d/10-sidereal.conf; cp -a ${DEFAULT_DRACUT_MODULE_DIR} ${root}/usr/lib/dracut/modules.d/90sidereal`);
    await mkdir(path.join(root, 'etc', 'dracut.conf.d'), { recursive: true });
    await writeFile(path.join(root, 'etc', 'dracut.conf.d', '10-sidereal.conf'), dracutConf(), { mode: 0o644 });
    await mkdir(path.join(root, 'usr', 'lib', 'dracut', 'modules.d'), { recursive: true });
    await cp(path.join(o.installDir, DEFAULT_DRACUT_MODULE_DIR), path.join(root, 'usr', 'lib', 'dracut', 'modules.d', '90sidereal'),
      { recursive: true, preserveTimestamps: true });

    step('apt-get update');
    await chroot(['apt-get', 'update']);

    step('apt-get install (dracut and the boot packages)');
    const pkgs = [...new Set([...BOOT_PACKAGES, ...(/^(C|POSIX|C\.UTF-8|C\.utf8)$/.test(r.locale) ? [] : ['locales']), ...r.packages.include])];
    await chroot([...APT_INSTALL, ...pkgs, ...r.packages.exclude.map((p) => `${p}-`)]);

    step(`apt-get install ${r.kernel} (its postinst runs dracut)`);
    await chroot([...APT_INSTALL, r.kernel]);
    const mods = await readdir(path.join(root, 'lib', 'modules')).catch(() => [] as string[]);
    const versions = mods.filter((d) => /^\d+\.\d+/.test(d));
    if (versions.length !== 1) throw new Error(`expected one kernel in /lib/modules, found ${versions.join(', ') || 'none'}`);
    kver = versions[0]!;

    step('dracut in the chroot');
    await chroot(['dracut', '--force', '--kver', kver, `/boot/initrd.img-${kver}`]);
    const ls = await chroot(['lsinitrd', `/boot/initrd.img-${kver}`]);
    initrdHas = { overlay: ls.stdout.includes('overlay.ko'), hook: ls.stdout.includes(DEFAULT_DRACUT_HOOK) };
    if (!o.aptCacheDir) await chroot(['apt-get', 'clean']);
  } finally {
    step('cleanup (policy-rc.d, umount)');
    if (policy) {
      commands.push(`rm ${root}/usr/sbin/policy-rc.d`);
      await rm(path.join(root, 'usr', 'sbin', 'policy-rc.d'), { force: true });
    }
    for (const m of mounted.reverse()) {
      commands.push(`umount ${m}`);
      const u = await run(['umount', m], { logger, reject: false });
      if (u.exitCode !== 0) {
        commands.push(`umount --lazy ${m}`);
        await run(['umount', '--lazy', m], { logger, reject: false });
      }
    }
    // Whatever is left (a command started setsid'ed inside, say): the mounts module's verified unmount.
    if ((await mountsUnder(root).catch(() => [])).length > 0) await unmountAll(root, { logger });
    step('');
  }
  const du = await run(['du', '-sbx', root], { logger, reject: false });
  const treeBytes = Number.parseInt(du.stdout.split(/\s/)[0] ?? '', 10) || 0;
  const initrdBytes = (await stat(path.join(root, 'boot', `initrd.img-${kver}`))).size;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, kver, sizes: { treeBytes, initrdBytes }, steps, commands, initrdHas };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
