import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { loadRecipe, validateRecipe, type HostDefaults, type Recipe } from '../../server/roots/recipe.js';
import {
  planBuild, hostArgv, substituteKver, pickKernelVersion, sourcesList, KVER, DEFAULT_DRACUT_HOOK,
  type BuildStep, type Action, type ExecAction, type PlanOptions,
} from '../../server/roots/plan.js';

const repo = join(import.meta.dirname, '../..');
const HOST: HostDefaults = { mirror: 'http://deb.debian.org/debian' };
const OPTS: PlanOptions = { generationDir: '/srv/sidereal/roots/test/gen-1', cacheDir: '/var/cache/sidereal', tool: 'debootstrap' };
const recipe = (extra: Record<string, unknown> = {}): Recipe => validateRecipe({ name: 'test', suite: 'bookworm', ...extra }, 'x', HOST);
const ids = (steps: BuildStep[]) => steps.map((s) => s.id);
const execs = (s: BuildStep) => s.run.filter((a): a is ExecAction => a.kind === 'exec');
const step = (steps: BuildStep[], id: string) => steps.find((s) => s.id === id)!;
/** Index of the step whose actions first mention `word` (a package, a path). */
const firstMention = (steps: BuildStep[], word: string) => steps.findIndex((s) => s.run.some((a) => JSON.stringify(a).includes(word)));

describe('planBuild', () => {
  const steps = planBuild(recipe(), OPTS);

  it('is in the documented order', () => {
    expect(ids(steps)).toEqual(['bootstrap', 'policy-rc.d', 'locale', 'apt-sources', 'packages', 'dracut-config', 'kernel',
      'node-identity', 'files', 'post-install', 'initrd', 'check-initrd', 'apt-clean', 'cleanup', 'publish']);
    for (const s of steps) {
      expect(s.title.length).toBeGreaterThan(0);
      expect(s.why.length).toBeGreaterThan(0);
      expect(s.weight).toBeGreaterThan(0);
    }
  });

  it('is plain data (survives JSON) and pure (same recipe, same plan)', () => {
    expect(JSON.parse(JSON.stringify(steps))).toEqual(steps);
    expect(planBuild(recipe(), OPTS)).toEqual(steps);
  });

  it('bootstraps with debootstrap: arch, variant, components, cache, suite, target, mirror', () => {
    const [boot] = step(steps, 'bootstrap').run as ExecAction[];
    expect(boot!.inChroot).toBe(false);
    expect(boot!.argv).toEqual(['debootstrap', '--arch=amd64', '--variant=minbase', '--components=main',
      '--cache-dir=/var/cache/sidereal/debootstrap', 'bookworm', OPTS.generationDir, 'http://deb.debian.org/debian']);
  });

  it('passes excludes, https certificates, the keyring, and no --variant for "-"', () => {
    const r = recipe({ variant: '-', mirror: 'https://deb.debian.org/debian', packages: { exclude: ['nano'] } });
    const argv = (planBuild(r, { ...OPTS, keyring: '/k.gpg' })[0]!.run[0] as ExecAction).argv;
    expect(argv).toContain('--include=ca-certificates');
    expect(argv).toContain('--exclude=nano');
    expect(argv).toContain('--keyring=/k.gpg');
    expect(argv.some((a) => a.startsWith('--variant'))).toBe(false);
    const pkgs = execs(step(planBuild(r, OPTS), 'packages'));
    expect(pkgs[2]!.argv).toContain('nano-'); // apt removes it if something installed it
  });

  it('mmdebstrap: its own flags and the cache synced in and out', () => {
    const argv = (planBuild(recipe({ variant: '-' }), { ...OPTS, tool: 'mmdebstrap' })[0]!.run[0] as ExecAction).argv;
    expect(argv[0]).toBe('mmdebstrap');
    expect(argv).toEqual(expect.arrayContaining(['--architectures=amd64', '--variant=debootstrap', '--components=main']));
    expect(argv.some((a) => a.includes('sync-in /var/cache/sidereal/mmdebstrap'))).toBe(true);
    expect(argv.slice(-3)).toEqual(['bookworm', OPTS.generationDir, 'http://deb.debian.org/debian']);
  });

  it('writes policy-rc.d first (after the bootstrap) and removes it last (before publishing)', () => {
    const write = steps.findIndex((s) => s.run.some((a) => a.kind === 'write-file' && a.path === '/usr/sbin/policy-rc.d'));
    const remove = steps.findIndex((s) => s.run.some((a) => a.kind === 'remove' && a.path === '/usr/sbin/policy-rc.d'));
    expect(write).toBe(1);
    expect(remove).toBe(steps.length - 2);
    const policy = steps[1]!.run[0] as Extract<Action, { kind: 'write-file' }>;
    expect(policy.content).toMatch(/exit 101/);
    expect(policy.mode).toBe(0o755);
    expect(steps.slice(remove + 1).every((s) => s.run.every((a) => a.kind === 'publish'))).toBe(true);
  });

  it('installs dracut first and alone, then the NFS boot packages, then the kernel last', () => {
    const pkgs = execs(step(steps, 'packages'));
    expect(pkgs[0]!.argv).toEqual(['apt-get', 'update']);
    expect(pkgs[1]!.argv.slice(-2)).toEqual(['dracut', 'dracut-network']);
    expect(pkgs[1]!.argv).toContain('--no-install-recommends');
    expect(pkgs[2]!.argv).toEqual(expect.arrayContaining(['nfs-common', 'netbase', 'systemd-sysv', 'isc-dhcp-client', 'ifupdown']));
    expect(pkgs[2]!.argv).not.toContain('dracut');
    for (const a of pkgs) {
      expect(a.inChroot).toBe(true);
      expect(a.env?.DEBIAN_FRONTEND).toBe('noninteractive');
    }
    const dracut = firstMention(steps, 'dracut-network');
    const config = firstMention(steps, '10-sidereal.conf');
    const kernel = firstMention(steps, 'linux-image-amd64');
    expect(dracut).toBeLessThan(config);
    expect(config).toBeLessThan(kernel);
    expect(ids(steps)[kernel]).toBe('kernel');
    // Nothing after the kernel step installs a package.
    for (const s of steps.slice(kernel + 1)) {
      expect(execs(s).some((a) => a.argv.includes('install'))).toBe(false);
    }
  });

  it('configures dracut for nfs and network-legacy and copies in the sidereal module', () => {
    const run = step(steps, 'dracut-config').run;
    const conf = run.find((a) => a.kind === 'write-file') as Extract<Action, { kind: 'write-file' }>;
    expect(conf.path).toBe('/etc/dracut.conf.d/10-sidereal.conf');
    expect(conf.content).toContain('add_dracutmodules+=" nfs network-legacy sidereal "');
    expect(conf.content).toContain('hostonly="no"');
    expect(run).toContainEqual({ kind: 'copy-in', from: 'boot-templates/dracut/90sidereal', to: '/usr/lib/dracut/modules.d/90sidereal' });
  });

  it('removes /etc/hostname, then builds the initrd in the chroot and checks overlay.ko and the hook', () => {
    expect(step(steps, 'node-identity').run).toContainEqual({ kind: 'remove', path: '/etc/hostname' });
    const [initrd] = step(steps, 'initrd').run;
    expect(initrd).toMatchObject({ kind: 'initrd', argv: ['dracut', '--force', '--kver', KVER, `/boot/initrd.img-${KVER}`] });
    const [check] = step(steps, 'check-initrd').run;
    expect(check).toMatchObject({ kind: 'check-initrd', argv: ['lsinitrd', `/boot/initrd.img-${KVER}`], mustList: ['overlay.ko', DEFAULT_DRACUT_HOOK] });
    expect(planBuild(recipe(), { ...OPTS, dracutHook: 'x-hook.sh' }).find((s) => s.id === 'check-initrd')!.run[0])
      .toMatchObject({ mustList: ['overlay.ko', 'x-hook.sh'] });
  });

  it('publishes the kernel and a world-readable initrd under @<root>, once the version is known', () => {
    const [publish] = substituteKver(step(steps, 'publish'), '6.1.0-28-amd64').run;
    expect(publish).toEqual({
      kind: 'publish', root: 'test', arch: 'amd64', kernelArgs: '', overlay: 'tmpfs', keepGenerations: 3,
      files: [
        { from: '/boot/vmlinuz-6.1.0-28-amd64', name: 'vmlinuz-6.1.0-28-amd64@test', mode: 0o644 },
        { from: '/boot/initrd.img-6.1.0-28-amd64', name: 'initrd.img-6.1.0-28-amd64@test', mode: 0o644 },
      ],
    });
    expect(pickKernelVersion(['6.1.0-28-amd64'])).toBe('6.1.0-28-amd64');
    expect(() => pickKernelVersion([])).toThrow(/found none/);
    expect(() => pickKernelVersion(['6.1.0-27-amd64', '6.1.0-28-amd64'])).toThrow(/found 6\.1\.0-27-amd64, 6\.1\.0-28-amd64/);
  });

  it('i386: the bootstrap under setarch i686, and every chroot command too', () => {
    const s = planBuild(recipe({ arch: 'i386' }), OPTS);
    const boot = s[0]!.run[0] as ExecAction;
    expect(boot.argv.slice(0, 4)).toEqual(['setarch', 'i686', 'debootstrap', '--arch=i386']);
    expect(execs(step(s, 'kernel'))[0]!.argv).toContain('linux-image-686');
    const chrootActions = s.flatMap((x) => x.run).filter((a) => a.kind === 'initrd' || a.kind === 'check-initrd' || (a.kind === 'exec' && a.inChroot));
    expect(chrootActions.length).toBeGreaterThan(3);
    for (const a of chrootActions) expect(hostArgv(a as ExecAction, '/r').slice(0, 4)).toEqual(['setarch', 'i686', 'chroot', '/r']);
    // amd64: plain chroot, and host commands run as they are.
    expect(hostArgv(execs(step(steps, 'kernel'))[0]!, '/r').slice(0, 2)).toEqual(['chroot', '/r']);
    expect(hostArgv(steps[0]!.run[0] as ExecAction, '/r')[0]).toBe('debootstrap');
  });

  it('the recipe\'s locale, files and post-install commands become actions', () => {
    const s = planBuild(recipe({
      locale: 'fr_FR.UTF-8', timezone: 'Europe/Paris', keyboard: 'fr',
      files: [{ path: '/etc/motd', content: 'hello\n', mode: '0600' }], postInstall: ['systemctl enable ssh'],
    }), OPTS);
    const locale = step(s, 'locale').run;
    expect(locale).toContainEqual({ kind: 'write-file', path: '/etc/locale.gen', content: 'fr_FR.UTF-8 UTF-8\n', mode: 0o644 });
    expect(locale).toContainEqual({ kind: 'symlink', path: '/etc/localtime', target: '/usr/share/zoneinfo/Europe/Paris' });
    expect(locale.some((a) => a.kind === 'write-file' && a.path === '/etc/default/keyboard' && a.content.includes('XKBLAYOUT="fr"'))).toBe(true);
    expect(execs(step(s, 'packages')).map((a) => a.argv)).toContainEqual(['locale-gen']);
    expect(step(s, 'files').run).toEqual([{ kind: 'write-file', path: '/etc/motd', content: 'hello\n', mode: 0o600 }]);
    expect(execs(step(s, 'post-install'))[0]!.argv).toEqual(['sh', '-c', 'systemctl enable ssh']);
    // C.UTF-8 needs no generation.
    expect(JSON.stringify(steps)).not.toContain('locale-gen');
  });

  it('apt sources: suite, updates and security', () => {
    expect(sourcesList(recipe({ components: ['main', 'contrib'] }))).toContain([
      'deb http://deb.debian.org/debian bookworm main contrib',
      'deb http://deb.debian.org/debian bookworm-updates main contrib',
      'deb http://deb.debian.org/debian-security bookworm-security main contrib',
    ].join('\n'));
    expect(sourcesList(recipe({ suite: 'sid' }))).not.toContain('security');
    expect(sourcesList(recipe({ suite: 'buster', mirror: 'http://ftp.fr.debian.org/debian' }))).toContain('deb http://security.debian.org/debian-security buster/updates main');
  });

  it('plans both shipped recipes', () => {
    for (const f of ['bookworm-minimal', 'bookworm-node']) {
      const s = planBuild(loadRecipe(join(repo, `roots/${f}.yaml`), HOST), OPTS);
      expect(ids(s)[0]).toBe('bootstrap');
      expect(ids(s).at(-1)).toBe('publish');
    }
  });

  it('refuses relative directories', () => {
    expect(() => planBuild(recipe(), { ...OPTS, cacheDir: 'cache' })).toThrow(/cacheDir must be absolute/);
  });
});
