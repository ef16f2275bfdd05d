import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import {
  loadRecipe, validateRecipe, defaultMirror, hostDefaults, RecipeError, FALLBACK_MIRROR, type HostDefaults,
} from '../../server/roots/recipe.js';
import { ConfigError } from '../../server/config/validate.js';

const repo = join(import.meta.dirname, '../..');
const fixtures = join(import.meta.dirname, '../fixtures/recipes');
const HOST: HostDefaults = { mirror: 'http://mirror.example.net/debian', locale: 'fr_FR.UTF-8', timezone: 'Europe/Paris' };
const base = () => ({ name: 'test', suite: 'bookworm' });

function errorOf(doc: unknown): RecipeError {
  try {
    validateRecipe(doc, 'test.yaml', HOST);
  } catch (e) {
    expect(e).toBeInstanceOf(RecipeError);
    expect(e).toBeInstanceOf(ConfigError);
    return e as RecipeError;
  }
  throw new Error('recipe was accepted');
}

describe('shipped recipes', () => {
  it('bookworm-minimal validates: minbase, fixed locale, the lab console', () => {
    const r = loadRecipe(join(repo, 'roots/bookworm-minimal.yaml'), HOST);
    expect(r).toMatchObject({
      name: 'bookworm-minimal', suite: 'bookworm', arch: 'amd64', variant: 'minbase', components: ['main'],
      kernel: 'linux-image-amd64', locale: 'C.UTF-8', timezone: 'Etc/UTC', overlay: 'tmpfs', mirror: HOST.mirror,
    });
    expect(r.kernelArgs).toContain('console=ttyS0');
  });

  it('bookworm-node validates: non-free firmware, ssh, files, post-install, server locale', () => {
    const r = loadRecipe(join(repo, 'roots/bookworm-node.yaml'), HOST);
    expect(r.components).toEqual(['main', 'contrib', 'non-free', 'non-free-firmware']);
    expect(r.packages.include).toEqual(expect.arrayContaining(['openssh-server', 'nfs-common', 'locales', 'firmware-linux-free', 'htop']));
    expect(r.locale).toBe('fr_FR.UTF-8');
    expect(r.timezone).toBe('Europe/Paris');
    expect(r.files.map((f) => f.path)).toContain('/etc/fstab');
    expect(r.files.every((f) => f.mode === 0o644)).toBe(true);
    expect(r.postInstall.length).toBeGreaterThan(0);
  });

  it('a file that does not parse names the file', () => {
    expect(() => loadRecipe(join(fixtures, 'oneline/sources.list'), HOST)).toThrow(/sources\.list: \(top\)|\(yaml\)/);
    expect(() => loadRecipe(join(fixtures, 'missing.yaml'), HOST)).toThrow(/\(file\): cannot read/);
  });
});

describe('defaults', () => {
  it('fills every default from the recipe and the server', () => {
    const r = validateRecipe(base(), 'x', { mirror: 'http://m.example/debian/', keyboard: { model: 'pc105', layout: 'fr', variant: '', options: '' } });
    expect(r).toEqual({
      name: 'test', suite: 'bookworm', arch: 'amd64', mirror: 'http://m.example/debian', components: ['main'], variant: 'minbase',
      packages: { include: [], exclude: [] }, kernel: 'linux-image-amd64', locale: 'C.UTF-8', timezone: 'Etc/UTC',
      keyboard: { model: 'pc105', layout: 'fr', variant: '', options: '' },
      files: [], postInstall: [], kernelArgs: '', overlay: 'tmpfs', keepGenerations: 3, source: 'x',
    });
  });

  it('i386 defaults to the 686 kernel', () => {
    expect(validateRecipe({ ...base(), arch: 'i386' }, 'x', HOST).kernel).toBe('linux-image-686');
  });

  it('a recipe value wins over the server', () => {
    const r = validateRecipe({ ...base(), mirror: 'https://deb.debian.org/debian', locale: 'en_US.UTF-8', timezone: 'UTC', keyboard: 'us' }, 'x', HOST);
    expect(r).toMatchObject({ mirror: 'https://deb.debian.org/debian', locale: 'en_US.UTF-8', timezone: 'UTC', keyboard: { layout: 'us', model: 'pc105' } });
  });

  it('files: normalised path, octal mode string', () => {
    const r = validateRecipe({ ...base(), files: [{ path: '/etc//motd', content: 'hi\n', mode: '0600' }, { path: '/usr/local/bin/x', content: '', mode: '755' }] }, 'x', HOST);
    expect(r.files).toEqual([{ path: '/etc/motd', content: 'hi\n', mode: 0o600 }, { path: '/usr/local/bin/x', content: '', mode: 0o755 }]);
  });
});

describe('defaultMirror', () => {
  it('one-line sources.list: skips comments, cdrom, deb-src and security; reads [options]', () => {
    expect(defaultMirror({ sourcesList: join(fixtures, 'oneline/sources.list'), sourcesDir: join(fixtures, 'nowhere') }))
      .toBe('http://ftp.fr.debian.org/debian');
  });

  it('deb822 .sources: skips third-party and disabled stanzas, ignores other file names', () => {
    expect(defaultMirror({ sourcesList: join(fixtures, 'nowhere'), sourcesDir: join(fixtures, 'deb822/sources.list.d') }))
      .toBe('http://mirror.example.net/debian');
  });

  it('sources.list comes before sources.list.d', () => {
    expect(defaultMirror({ sourcesList: join(fixtures, 'oneline/sources.list'), sourcesDir: join(fixtures, 'deb822/sources.list.d') }))
      .toBe('http://ftp.fr.debian.org/debian');
  });

  it('nothing found: deb.debian.org', () => {
    expect(defaultMirror({ sourcesList: join(fixtures, 'nowhere'), sourcesDir: join(fixtures, 'nowhere') })).toBe(FALLBACK_MIRROR);
  });

  it('hostDefaults reads locale, timezone and keyboard, each optional', () => {
    const h = join(fixtures, 'host');
    expect(hostDefaults({
      sourcesList: join(fixtures, 'oneline/sources.list'), sourcesDir: join(fixtures, 'nowhere'),
      locale: join(h, 'locale'), timezone: join(h, 'timezone'), keyboard: join(h, 'keyboard'), localtime: join(h, 'nowhere'),
    })).toEqual({
      mirror: 'http://ftp.fr.debian.org/debian', locale: 'fr_FR.UTF-8', timezone: 'Europe/Paris',
      keyboard: { model: 'pc105', layout: 'fr', variant: 'oss', options: '' },
    });
    const none = join(fixtures, 'nowhere');
    expect(hostDefaults({ sourcesList: none, sourcesDir: none, locale: none, timezone: none, keyboard: none, localtime: none }))
      .toEqual({ mirror: FALLBACK_MIRROR });
  });
});

describe('bad input names its key and value', () => {
  it.each([
    ['unknown key', { ...base(), packagez: [] }, 'packagez', /unknown key/],
    ['unknown nested key', { ...base(), packages: { include: [], remove: [] } }, 'packages.remove', /unknown key/],
    ['missing suite', { name: 'test' }, 'suite', /is required/],
    ['missing name', { suite: 'bookworm' }, 'name', /is required/],
    ['bad name', { ...base(), name: 'Big Root' }, 'name', /"Big Root" is not a root name/],
    ['bad arch', { ...base(), arch: 'arm64' }, 'arch', /must be one of amd64, i386, got "arm64"/],
    ['bad variant', { ...base(), variant: 'fakechroot' }, 'variant', /must be one of minbase, buildd, -/],
    ['bad mirror', { ...base(), mirror: 'deb.debian.org/debian' }, 'mirror', /"deb.debian.org\/debian" is not an http/],
    ['components not a list', { ...base(), components: 'main contrib' }, 'components', /must be a list/],
    ['empty components', { ...base(), components: [] }, 'components', /at least one/],
    ['bad package name', { ...base(), packages: { include: ['htop', 'less', 'curl', 'foo bar'] } }, 'packages.include[3]', /^test\.yaml: packages\.include\[3\]: "foo bar" is not a Debian package name$/],
    ['upper-case package', { ...base(), packages: { exclude: ['Foo'] } }, 'packages.exclude[0]', /"Foo" is not a Debian package name/],
    ['duplicate package', { ...base(), packages: { include: ['htop', 'htop'] } }, 'packages.include[1]', /listed twice/],
    ['kernel in include', { ...base(), packages: { include: ['linux-image-amd64'] } }, 'packages.include[0]', /is a kernel/],
    ['initramfs-tools', { ...base(), packages: { include: ['initramfs-tools'] } }, 'packages.include[0]', /conflicts with dracut/],
    ['include and exclude', { ...base(), packages: { include: ['htop'], exclude: ['htop'] } }, 'packages.include[0]', /also in packages.exclude/],
    ['excluding a boot package', { ...base(), packages: { exclude: ['netbase'] } }, 'packages.exclude[0]', /needed to boot over NFS/],
    ['kernel not a kernel', { ...base(), kernel: 'htop' }, 'kernel', /not a kernel package/],
    ['bad locale', { ...base(), locale: 'french' }, 'locale', /"french" is not a locale/],
    ['bad timezone', { ...base(), timezone: 'paris' }, 'timezone', /"paris" is not a time zone/],
    ['bad keyboard', { ...base(), keyboard: { layout: 'fr', colour: 'red' } }, 'keyboard.colour', /unknown key/],
    ['.. in files path', { ...base(), files: [{ path: '/etc/../../x', content: '' }] }, 'files[0].path', /"\/etc\/..\/..\/x" contains ".."/],
    ['relative files path', { ...base(), files: [{ path: 'etc/motd', content: '' }] }, 'files[0].path', /not an absolute path/],
    ['files path is /', { ...base(), files: [{ path: '/', content: '' }] }, 'files[0].path', /names the root itself/],
    ['files without content', { ...base(), files: [{ path: '/etc/motd' }] }, 'files[0].content', /is required/],
    ['unquoted mode', { ...base(), files: [{ path: '/etc/motd', content: '', mode: 644 }] }, 'files[0].mode', /644 is not a quoted octal mode/],
    ['bad mode', { ...base(), files: [{ path: '/etc/motd', content: '', mode: '0999' }] }, 'files[0].mode', /not a quoted octal mode/],
    ['duplicate file', { ...base(), files: [{ path: '/etc/motd', content: '' }, { path: '/etc//motd', content: '' }] }, 'files[1].path', /listed twice/],
    ['empty postInstall command', { ...base(), postInstall: ['true', '  '] }, 'postInstall[1]', /must be a non-empty shell command/],
    ['multi-line command', { ...base(), postInstall: ['echo a\necho b'] }, 'postInstall[0]', /spans several lines/],
    ['multi-line kernelArgs', { ...base(), kernelArgs: 'quiet\nsplash' }, 'kernelArgs', /one line/],
    ['bad overlay', { ...base(), overlay: 'aufs' }, 'overlay', /must be one of tmpfs, none, got "aufs"/],
    ['keepGenerations too big', { ...base(), keepGenerations: 21 }, 'keepGenerations', /between 1 and 20, got 21/],
    ['keepGenerations not whole', { ...base(), keepGenerations: 1.5 }, 'keepGenerations', /whole number/],
  ])('%s', (_what, doc, key, message) => {
    const e = errorOf(doc);
    expect(e.key).toBe(key);
    expect(e.source).toBe('test.yaml');
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`test.yaml: ${key}: `)).toBe(true);
  });

  it('a YAML list is not a recipe', () => {
    expect(errorOf(['name: x']).key).toBe('(top)');
  });
});
