/**
 * The steps that turn a recipe into a bootable NFS root, as data: `planBuild` is pure (no root,
 * no I/O), so tests assert the plan and the build runner only executes it. Every step and every
 * action is plain JSON (the runner may log or store it as it is).
 *
 * Actions, and what the runner does with each (paths are inside the root unless named host):
 * - `exec`: run `argv`. On the host when `inChroot` is false (the argv is complete, `setarch`
 *   included). In the root when `inChroot` is true: `hostArgv()` gives `[setarch i686] chroot
 *   <root> argv` (execInChroot with `arch` and `env` does the same), with /proc, /sys and
 *   /dev/pts mounted for the duration (withChroot) and each of `binds` (host dir, created if
 *   missing) bind-mounted on its `root` path. `env` is the environment to run with (the same as
 *   chroot.ts's chrootEnv, so it may also be passed as extra over it). Non-zero: fail.
 * - `write-file` (parents created), `symlink` (replacing what is there), `remove` (`rm -f`).
 * - `copy-in`: copy the host directory `from` (relative: to the Sidereal install directory)
 *   recursively to `to`.
 * - `initrd` and `check-initrd`: like an `exec` in the chroot, after `@KVER@` is replaced by the
 *   kernel version installed in the root (`pickKernelVersion` on the names in /lib/modules;
 *   `substituteKver` replaces it in any step). `check-initrd` also fails unless its output
 *   contains each of `mustList`.
 * - `publish`: copy each `files[].from` (in the root) to the TFTP root as `name`, with `mode`,
 *   and register the root (name, arch, kernelArgs, overlay) and its generation; keep
 *   `keepGenerations` generations.
 */
import { POLICY_RC_D } from './chroot.js';
import { isAbsolute } from 'node:path';
import { BOOT_PACKAGES, type Recipe, type RootArch } from './recipe.js';

/** Stands for the kernel version, only known once the kernel package is installed. */
export const KVER = '@KVER@';
/** The Sidereal dracut module (module-setup.sh and its pre-pivot hook), copied into each root. */
export const DEFAULT_DRACUT_MODULE_DIR = 'boot-templates/dracut/90sidereal';
/** The hook's file name, which `lsinitrd` must list (SIDUS's is `sidus-mount.sh`). */
export const DEFAULT_DRACUT_HOOK = 'sidereal-mount.sh';

export interface PlanOptions {
  /** The new generation's root directory (the bootstrap target), on the host. */
  generationDir: string;
  /** Host directory for downloaded .debs, kept across builds. */
  cacheDir: string;
  tool: 'debootstrap' | 'mmdebstrap';
  /** A keyring for the bootstrap (the tool's default otherwise: debian-archive-keyring). */
  keyring?: string;
  dracutModuleDir?: string;
  dracutHook?: string;
}

export interface Bind { host: string; root: string }

export interface ExecAction {
  kind: 'exec';
  argv: string[];
  inChroot: boolean;
  env?: Record<string, string>;
  /** Chroot commands of an i386 root: run under `setarch i686` (uname says i686); as execInChroot's `arch`. */
  arch?: RootArch;
  binds?: Bind[];
}
export interface WriteFileAction { kind: 'write-file'; path: string; content: string; mode: number }
export interface SymlinkAction { kind: 'symlink'; path: string; target: string }
export interface RemoveAction { kind: 'remove'; path: string }
export interface CopyInAction { kind: 'copy-in'; from: string; to: string }
export interface InitrdAction { kind: 'initrd'; argv: string[]; env: Record<string, string>; arch?: RootArch }
export interface CheckInitrdAction { kind: 'check-initrd'; argv: string[]; env: Record<string, string>; arch?: RootArch; mustList: string[] }
export interface PublishAction {
  kind: 'publish';
  root: string;
  arch: Recipe['arch'];
  kernelArgs: string;
  overlay: Recipe['overlay'];
  keepGenerations: number;
  files: Array<{ from: string; name: string; mode: number }>;
}
export type Action = ExecAction | WriteFileAction | SymlinkAction | RemoveAction | CopyInAction
  | InitrdAction | CheckInitrdAction | PublishAction;

export type StepId = 'bootstrap' | 'policy-rc.d' | 'locale' | 'apt-sources' | 'packages' | 'dracut-config'
  | 'kernel' | 'node-identity' | 'files' | 'post-install' | 'initrd' | 'check-initrd' | 'apt-clean' | 'cleanup' | 'publish';

export interface BuildStep {
  id: StepId;
  title: string;
  /** Why the step exists (for `--verbose` and for whoever reads a failed build's log). */
  why: string;
  /** Relative expected duration, for a progress bar. */
  weight: number;
  run: Action[];
}

/** Inside the chroot: no prompt, no locale warnings before locales exist, a sane PATH. */
export const CHROOT_ENV: Readonly<Record<string, string>> = {
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  LC_ALL: 'C.UTF-8',
  LANG: 'C.UTF-8',
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
};

const APT_INSTALL = ['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold'];

export function planBuild(recipe: Recipe, opts: PlanOptions): BuildStep[] {
  if (!isAbsolute(opts.generationDir)) throw new Error(`generationDir must be absolute, got ${opts.generationDir}`);
  if (!isAbsolute(opts.cacheDir)) throw new Error(`cacheDir must be absolute, got ${opts.cacheDir}`);
  const chrootArch = recipe.arch === 'i386' ? { arch: 'i386' as const } : {};
  const aptCache: Bind[] = [{ host: `${opts.cacheDir}/apt`, root: '/var/cache/apt/archives' }];
  const chroot = (argv: string[], binds?: Bind[]): ExecAction => ({
    kind: 'exec', argv, inChroot: true, env: { ...CHROOT_ENV }, ...chrootArch, ...(binds ? { binds } : {}),
  });
  const hook = opts.dracutHook ?? DEFAULT_DRACUT_HOOK;
  const generated = needsLocaleGen(recipe.locale);
  const install = unique([...BOOT_PACKAGES, ...(generated ? ['locales'] : []), ...recipe.packages.include])
    .filter((p) => p !== 'dracut' && p !== 'dracut-network');
  const initrd = `/boot/initrd.img-${KVER}`;

  const steps: BuildStep[] = [
    {
      id: 'bootstrap', title: `${opts.tool} ${recipe.suite} ${recipe.arch} (${recipe.variant})`, weight: 30,
      why: 'A base Debian system in the new generation directory. i386 runs under setarch i686 so the tools see a 32-bit machine.',
      run: [{ kind: 'exec', argv: bootstrapArgv(recipe, opts), inChroot: false }],
    },
    {
      id: 'policy-rc.d', title: 'block service start-up in the chroot', weight: 1,
      why: 'Packages would start their daemons (nfs-common, ssh...) on the build server; policy-rc.d exiting 101 forbids it. Removed by the last step.',
      // The chroot session's own text, so crash recovery recognises it as ours and removes it.
      run: [{ kind: 'write-file', path: '/usr/sbin/policy-rc.d', content: POLICY_RC_D, mode: 0o755 }],
    },
    {
      id: 'locale', title: `locale ${recipe.locale}, timezone ${recipe.timezone}${recipe.keyboard ? `, keyboard ${recipe.keyboard.layout}` : ''}`, weight: 1,
      why: "The nodes get the recipe's (by default the server's) locale, timezone and keyboard, written before packages so their postinsts read them.",
      run: localeActions(recipe),
    },
    {
      id: 'apt-sources', title: `apt sources: ${recipe.mirror} ${recipe.suite} ${recipe.components.join(' ')}`, weight: 1,
      why: "The bootstrap's sources.list has the suite only: add updates and security, so the root (and its maintenance node) gets fixes.",
      run: [{ kind: 'write-file', path: '/etc/apt/sources.list', content: sourcesList(recipe), mode: 0o644 }],
    },
    {
      id: 'packages', title: `install dracut, then ${install.length} packages`, weight: 30,
      why: 'dracut first and alone: installed later, or with the kernel, apt satisfies the kernel\'s initramfs dependency with initramfs-tools, whose initrd cannot mount an NFS root. Then what the NFS boot needs (netbase: without /etc/protocols mount.nfs fails; network-legacy needs dhclient, ip, pgrep) and the recipe\'s packages, without recommends.',
      run: [
        chroot(['apt-get', 'update']),
        chroot([...APT_INSTALL, 'dracut', 'dracut-network'], aptCache),
        chroot([...APT_INSTALL, ...install, ...recipe.packages.exclude.map((p) => `${p}-`)], aptCache),
        ...(generated ? [chroot(['locale-gen'])] : []),
      ],
    },
    {
      id: 'dracut-config', title: 'dracut: nfs, network-legacy and the sidereal module', weight: 1,
      why: 'Without network-legacy forced, dracut picks systemd-networkd and the node never gets its address in the initrd. The sidereal module puts the tmpfs overlay over the read-only root; hostonly=no makes an initrd for any node, not for the build server.',
      run: [
        { kind: 'write-file', path: '/etc/dracut.conf.d/10-sidereal.conf', content: dracutConf(), mode: 0o644 },
        { kind: 'copy-in', from: opts.dracutModuleDir ?? DEFAULT_DRACUT_MODULE_DIR, to: '/usr/lib/dracut/modules.d/90sidereal' },
      ],
    },
    {
      id: 'kernel', title: `install ${recipe.kernel}`, weight: 10,
      why: 'The kernel comes last, once dracut is installed and configured, so nothing pulls in initramfs-tools. INITRD=No makes its postinst skip dracut: the initrd step builds the one we publish, once (about a minute saved here).',
      run: [{ ...chroot([...APT_INSTALL, recipe.kernel], aptCache), env: { ...CHROOT_ENV, INITRD: 'No' } }],
    },
    {
      id: 'node-identity', title: 'no hostname, no machine-id, loopback-only interfaces, the booted report', weight: 1,
      why: "The bootstrap copied the build server's /etc/hostname: removed, each node takes its name from DHCP. An empty machine-id makes each node generate its own. The interface is configured by the initrd and must not be touched again (the root is on it).",
      run: [
        { kind: 'remove', path: '/etc/hostname' },
        // The unit that tells Sidereal the node is up (POST /boot/booted): the end of its boot timeline.
        { kind: 'copy-in', from: 'boot-templates/root/sidereal-report-booted', to: '/usr/lib/sidereal/report-booted' },
        { kind: 'copy-in', from: 'boot-templates/root/sidereal-booted.service', to: '/etc/systemd/system/sidereal-booted.service' },
        { kind: 'symlink', path: '/etc/systemd/system/multi-user.target.wants/sidereal-booted.service', target: '/etc/systemd/system/sidereal-booted.service' },
        // Its heartbeat: the tree the node runs stays exported while it reports it.
        { kind: 'copy-in', from: 'boot-templates/root/sidereal-alive.service', to: '/etc/systemd/system/sidereal-alive.service' },
        { kind: 'copy-in', from: 'boot-templates/root/sidereal-alive.timer', to: '/etc/systemd/system/sidereal-alive.timer' },
        { kind: 'symlink', path: '/etc/systemd/system/timers.target.wants/sidereal-alive.timer', target: '/etc/systemd/system/sidereal-alive.timer' },
        { kind: 'write-file', path: '/etc/hosts', content: '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n', mode: 0o644 },
        { kind: 'write-file', path: '/etc/machine-id', content: '', mode: 0o444 },
        { kind: 'remove', path: '/var/lib/dbus/machine-id' },
        { kind: 'write-file', path: '/etc/network/interfaces', content: 'auto lo\niface lo inet loopback\n', mode: 0o644 },
      ],
    },
    {
      id: 'files', title: `write ${recipe.files.length} file(s) from the recipe`, weight: 1,
      why: "The recipe's own files, after the packages so they win over packaged defaults.",
      run: recipe.files.map((f) => ({ kind: 'write-file' as const, path: f.path, content: f.content, mode: f.mode })),
    },
    {
      id: 'post-install', title: `run ${recipe.postInstall.length} post-install command(s)`, weight: recipe.postInstall.length > 0 ? 3 : 1,
      why: "The recipe's commands, in the chroot, once everything is installed.",
      run: recipe.postInstall.map((cmd) => chroot(['sh', '-c', cmd])),
    },
    {
      id: 'initrd', title: 'build the initrd in the chroot', weight: 8,
      why: "Built inside the chroot with the root's own dracut, modules and config (files and post-install included); built on the host, overlay.ko and the hook are missing.",
      run: [{ kind: 'initrd', argv: ['dracut', '--force', '--kver', KVER, initrd], env: { ...CHROOT_ENV }, ...chrootArch }],
    },
    {
      id: 'check-initrd', title: `check the initrd has overlay.ko and ${hook}`, weight: 1,
      why: 'An initrd without overlay.ko or the hook boots to a read-only root or an emergency shell: fail the build here instead.',
      run: [{ kind: 'check-initrd', argv: ['lsinitrd', initrd], env: { ...CHROOT_ENV }, ...chrootArch, mustList: ['overlay.ko', hook] }],
    },
    {
      id: 'apt-clean', title: 'empty the package cache in the root', weight: 1,
      why: "debootstrap leaves the .debs it installed in the root's /var/cache/apt/archives (about 31 MiB here, hidden during the build by the shared cache mounted over it): every node would carry them.",
      run: [chroot(['apt-get', 'clean'])],
    },
    {
      id: 'cleanup', title: 'allow services again', weight: 1,
      why: 'policy-rc.d would keep every service of the booted nodes from starting.',
      run: [{ kind: 'remove', path: '/usr/sbin/policy-rc.d' }],
    },
    {
      id: 'publish', title: `publish the kernel and initrd as *@${recipe.name}`, weight: 2,
      why: 'Nodes fetch vmlinuz-<ver>@<root> and initrd.img-<ver>@<root> from the TFTP root; dracut writes the initrd 0600, so the copy is made world-readable.',
      run: [{
        kind: 'publish', root: recipe.name, arch: recipe.arch, kernelArgs: recipe.kernelArgs, overlay: recipe.overlay,
        keepGenerations: recipe.keepGenerations,
        files: [
          { from: `/boot/vmlinuz-${KVER}`, name: `vmlinuz-${KVER}@${recipe.name}`, mode: 0o644 },
          { from: initrd, name: `initrd.img-${KVER}@${recipe.name}`, mode: 0o644 },
        ],
      }],
    },
  ];
  return steps;
}

function bootstrapArgv(r: Recipe, o: PlanOptions): string[] {
  const pre = r.arch === 'i386' ? ['setarch', 'i686'] : [];
  // The chroot's apt needs ca-certificates to reach an https mirror.
  const include = r.mirror.startsWith('https:') ? ['ca-certificates'] : [];
  const keyring = o.keyring ? [`--keyring=${o.keyring}`] : [];
  if (o.tool === 'debootstrap') {
    return [...pre, 'debootstrap', `--arch=${r.arch}`, ...(r.variant === '-' ? [] : [`--variant=${r.variant}`]),
      `--components=${r.components.join(',')}`, ...(include.length ? [`--include=${include.join(',')}`] : []),
      ...(r.packages.exclude.length ? [`--exclude=${r.packages.exclude.join(',')}`] : []),
      `--cache-dir=${o.cacheDir}/debootstrap`, ...keyring, r.suite, o.generationDir, r.mirror];
  }
  // mmdebstrap has no cache directory: sync the .debs in and out of the chroot's apt cache
  // (keeping the essential ones it would unlink). Its name for debootstrap's default is "debootstrap".
  const cache = `${o.cacheDir}/mmdebstrap`;
  return [...pre, 'mmdebstrap', `--architectures=${r.arch}`, `--variant=${r.variant === '-' ? 'debootstrap' : r.variant}`,
    `--components=${r.components.join(',')}`, ...(include.length ? [`--include=${include.join(',')}`] : []), ...keyring,
    // maybe-merged-usr: the same merged /usr as debootstrap, set up by the hook rather than by
    // apt choosing `usrmerge` (which pulls in perl: 8 packages, 16 MiB more, measured).
    '--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr',
    '--skip=essential/unlink', '--setup-hook=mkdir -p "$1"/var/cache/apt/archives',
    `--setup-hook=sync-in ${cache} /var/cache/apt/archives/`, `--customize-hook=sync-out /var/cache/apt/archives ${cache}`,
    r.suite, o.generationDir, r.mirror];
}

function localeActions(r: Recipe): Action[] {
  const out: Action[] = [{ kind: 'write-file', path: '/etc/default/locale', content: `LANG=${r.locale}\n`, mode: 0o644 }];
  if (needsLocaleGen(r.locale)) {
    out.push({ kind: 'write-file', path: '/etc/locale.gen', content: `${r.locale} ${charsetOf(r.locale)}\n`, mode: 0o644 });
  }
  out.push(
    { kind: 'write-file', path: '/etc/timezone', content: `${r.timezone}\n`, mode: 0o644 },
    { kind: 'symlink', path: '/etc/localtime', target: `/usr/share/zoneinfo/${r.timezone}` },
  );
  if (r.keyboard) {
    const k = r.keyboard;
    out.push({
      kind: 'write-file', path: '/etc/default/keyboard', mode: 0o644,
      content: `XKBMODEL="${k.model}"\nXKBLAYOUT="${k.layout}"\nXKBVARIANT="${k.variant}"\nXKBOPTIONS="${k.options}"\nBACKSPACE="guess"\n`,
    });
  }
  return out;
}

function needsLocaleGen(locale: string): boolean {
  return !/^(C|POSIX|C\.UTF-8|C\.utf8)$/.test(locale);
}

/** en_US.UTF-8 -> UTF-8; fr_FR@euro -> ISO-8859-15; fr_FR -> ISO-8859-1 (glibc's SUPPORTED names). */
function charsetOf(locale: string): string {
  const m = /\.([A-Za-z0-9-]+)/.exec(locale);
  if (m) return /^utf-?8$/i.test(m[1]!) ? 'UTF-8' : m[1]!.toUpperCase();
  return locale.endsWith('@euro') ? 'ISO-8859-15' : 'ISO-8859-1';
}

/** Where security updates come from, in the format the suite uses (buster and older: suite/updates). */
export function sourcesList(r: Recipe): string {
  const comps = r.components.join(' ');
  const lines = [`# Written by Sidereal from recipe ${r.name}: edit the recipe and rebuild.`, `deb ${r.mirror} ${r.suite} ${comps}`];
  if (!/^(sid|unstable|experimental|rc-buggy)$/.test(r.suite)) {
    const security = /^https?:\/\/deb\.debian\.org\/debian$/.test(r.mirror)
      ? r.mirror.replace(/\/debian$/, '/debian-security')
      : 'http://security.debian.org/debian-security';
    const old = /^(jessie|stretch|buster)$/.test(r.suite);
    lines.push(`deb ${r.mirror} ${r.suite}-updates ${comps}`, `deb ${security} ${r.suite}${old ? '/updates' : '-security'} ${comps}`);
  }
  return `${lines.join('\n')}\n`;
}

export function dracutConf(): string {
  return [
    '# Written by Sidereal when it built this root.',
    '# nfs: the root is on NFS. network-legacy: dhclient and ifup in the initrd; without it dracut',
    '# picks systemd-networkd. sidereal: the tmpfs overlay over the read-only root (sidereal.overlay=).',
    'add_dracutmodules+=" nfs network-legacy sidereal "',
    'omit_dracutmodules+=" systemd-networkd network-manager connman "',
    'add_drivers+=" overlay "',
    '# One initrd for every node, not one for the build server\'s hardware and command line.',
    'hostonly="no"',
    'hostonly_cmdline="no"',
    '',
  ].join('\n');
}

/** The full host command line of a chroot action: `[setarch i686] chroot <root> argv`. */
export function hostArgv(a: ExecAction | InitrdAction | CheckInitrdAction, rootDir: string): string[] {
  if (a.kind === 'exec' && !a.inChroot) return a.argv;
  return [...(a.arch === 'i386' ? ['setarch', 'i686'] : []), 'chroot', rootDir, ...a.argv];
}

/** The one kernel version in a fresh root, from the entries of its /lib/modules. */
export function pickKernelVersion(moduleDirs: string[]): string {
  const versions = moduleDirs.filter((d) => /^\d+\.\d+/.test(d));
  if (versions.length !== 1) {
    throw new Error(`expected one kernel in /lib/modules, found ${versions.length ? versions.join(', ') : 'none'}`);
  }
  return versions[0]!;
}

/** A copy of a step (or action) with every @KVER@ replaced by the installed kernel version. */
export function substituteKver<T>(x: T, kver: string): T {
  return JSON.parse(JSON.stringify(x).split(KVER).join(kver)) as T;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
