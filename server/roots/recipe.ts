/**
 * Root recipes: one YAML file per shared root in `roots/`, validated like the config file
 * (an unknown key, a missing one or a bad value is refused, naming the key path and the value:
 * `packages.include[3]: "foo bar" is not a Debian package name`).
 *
 * | key                | type / values                          | default                                  |
 * |--------------------|----------------------------------------|------------------------------------------|
 * | `name`             | `[a-z0-9][a-z0-9._-]*`, required       | (none) - the `@<name>` of published files |
 * | `suite`            | Debian suite or codename, required     | (none)                                   |
 * | `arch`             | `amd64` \| `i386`                      | `amd64`                                  |
 * | `mirror`           | http(s):// or file:/ URL               | this machine's apt mirror (`defaultMirror`), else `http://deb.debian.org/debian` |
 * | `components`       | list of archive components             | `[main]`                                 |
 * | `variant`          | `minbase` \| `buildd` \| `"-"` (quote it: a bare `-` is YAML list syntax) | `minbase` |
 * | `packages.include` | list of Debian package names           | `[]`  (never a kernel: that is `kernel`) |
 * | `packages.exclude` | list of Debian package names           | `[]`                                     |
 * | `kernel`           | Debian package name                    | `linux-image-amd64` (amd64), `linux-image-686` (i386) |
 * | `locale`           | `ll_CC.UTF-8`, `C.UTF-8`, `POSIX`...   | the server's (`/etc/default/locale` LANG), else `C.UTF-8` |
 * | `timezone`         | `Area/City` (or `UTC`)                 | the server's (`/etc/timezone`, `/etc/localtime`), else `Etc/UTC` |
 * | `keyboard`         | layout (`fr`) or `{layout, model?, variant?, options?}` | the server's (`/etc/default/keyboard`), else none written |
 * | `files`            | list of `{path, content, mode?}`: path absolute in the root, no `..`; mode an octal string (`"0644"`) | `[]`, mode `"0644"` |
 * | `postInstall`      | list of one-line shell commands, run in the chroot with `sh -c` | `[]`                |
 * | `kernelArgs`       | string, one line                       | `""`                                     |
 * | `overlay`          | `tmpfs` \| `none`                      | `tmpfs`                                  |
 * | `keepGenerations`  | whole number 1..20                     | `3`                                      |
 *
 * The server's defaults are read once by `hostDefaults()`; tests pass their own to
 * `validateRecipe` so a recipe's meaning never depends on the machine running the test.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, type Obj, isObj, describe, join } from '../config/validate.js';

export type RootArch = 'amd64' | 'i386';
export type Variant = 'minbase' | 'buildd' | '-';
export type OverlayMode = 'tmpfs' | 'none';

export interface Keyboard { model: string; layout: string; variant: string; options: string }

export interface RecipeFile {
  /** Absolute path inside the root, normalised, never containing `..`. */
  path: string;
  content: string;
  /** Permission bits (0o644 unless the recipe said otherwise). */
  mode: number;
}

export interface Recipe {
  name: string;
  suite: string;
  arch: RootArch;
  mirror: string;
  components: string[];
  variant: Variant;
  packages: { include: string[]; exclude: string[] };
  kernel: string;
  locale: string;
  timezone: string;
  keyboard?: Keyboard;
  files: RecipeFile[];
  postInstall: string[];
  kernelArgs: string;
  overlay: OverlayMode;
  keepGenerations: number;
  /** Where the recipe came from (a file path, or what the caller said), for messages. */
  source: string;
}

/** What a recipe inherits from the server when it says nothing. */
export interface HostDefaults { mirror: string; locale?: string; timezone?: string; keyboard?: Keyboard }

/** Same shape as ConfigError (`key`, `problem`), plus the recipe it is about. */
export class RecipeError extends ConfigError {
  constructor(key: string, problem: string, public readonly source: string) {
    super(key, problem);
    this.name = 'RecipeError';
    this.message = `${source}: ${key}: ${problem}`;
  }
}

export const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_KERNEL: Record<RootArch, string> = { amd64: 'linux-image-amd64', i386: 'linux-image-686' };
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/**
 * Installed in every root whatever the recipe says, because a node cannot boot over NFS
 * without them (seen booting a minimal bookworm root): dracut + dracut-network build the
 * NFS-capable initrd; nfs-common has mount.nfs; netbase has /etc/protocols, without which
 * mount.nfs fails; systemd-sysv is /sbin/init (minbase has none); dracut's network-legacy
 * module needs dhclient (isc-dhcp-client), ip (iproute2) and pgrep (procps), and ifupdown
 * brings the interface up the legacy way; tzdata backs `timezone`. `packages.exclude` may not
 * name them.
 */
export const BOOT_PACKAGES = ['dracut', 'dracut-network', 'nfs-common', 'netbase', 'systemd-sysv', 'ifupdown',
  'isc-dhcp-client', 'iproute2', 'procps', 'tzdata'] as const;

const TOP_KEYS = ['name', 'suite', 'arch', 'mirror', 'components', 'variant', 'packages', 'kernel', 'locale',
  'timezone', 'keyboard', 'files', 'postInstall', 'kernelArgs', 'overlay', 'keepGenerations'] as const;

export function loadRecipe(file: string, host?: HostDefaults): Recipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new RecipeError('(file)', `cannot read ${file}: ${(e as Error).message}`, file);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new RecipeError('(yaml)', `not valid YAML: ${(e as Error).message}`, file);
  }
  return validateRecipe(doc, file, host);
}

export function validateRecipe(doc: unknown, source: string, host: HostDefaults = hostDefaults()): Recipe {
  const fail = (key: string, problem: string): never => { throw new RecipeError(key, problem, source); };
  // Every helper below throws through `fail`, so each message names the key path and the value.
  const v = new Checker(fail);
  if (!isObj(doc)) return fail('(top)', `the recipe must be a YAML mapping, got ${describe(doc)}`);
  for (const k of Object.keys(doc)) {
    if (!(TOP_KEYS as readonly string[]).includes(k)) fail(k, `unknown key (expected one of: ${TOP_KEYS.join(', ')})`);
  }

  const name = v.matching(doc, 'name', '', /^[a-z0-9][a-z0-9._-]*$/, 'is not a root name (a-z, 0-9, ".", "_", "-")', true)!;
  if (name.length > 64) fail('name', `${describe(name)} is longer than 64 characters`);
  const suite = v.matching(doc, 'suite', '', /^[a-z][a-z0-9.-]*$/, 'is not a Debian suite or codename', true)!;
  const arch = v.oneOf(doc, 'arch', '', ['amd64', 'i386'] as const, 'amd64');
  const mirror = (v.matching(doc, 'mirror', '', /^(https?:\/\/[^\s/]+(\/\S*)?|file:\/\S+)$/, 'is not an http://, https:// or file:/ URL', false)
    ?? host.mirror).replace(/\/+$/, '');
  const components = v.list(doc, 'components', '', (x, where) => v.itemMatching(x, where, /^[a-z][a-z0-9-]*$/, 'is not an archive component')) ?? ['main'];
  if (components.length === 0) fail('components', 'must list at least one component (main)');
  v.noDuplicates(components, 'components');
  const variant = v.oneOf(doc, 'variant', '', ['minbase', 'buildd', '-'] as const, 'minbase');

  let include: string[] = [];
  let exclude: string[] = [];
  if (doc.packages !== undefined && doc.packages !== null) {
    if (!isObj(doc.packages)) fail('packages', `must be a mapping with include and exclude, got ${describe(doc.packages)}`);
    const p = doc.packages as Obj;
    v.noUnknown(p, ['include', 'exclude'], 'packages');
    include = v.list(p, 'include', 'packages', (x, where) => v.packageName(x, where)) ?? [];
    exclude = v.list(p, 'exclude', 'packages', (x, where) => v.packageName(x, where)) ?? [];
    v.noDuplicates(include, 'packages.include');
    v.noDuplicates(exclude, 'packages.exclude');
    exclude.forEach((pkg, i) => {
      if ((BOOT_PACKAGES as readonly string[]).includes(pkg)) fail(`packages.exclude[${i}]`, `${describe(pkg)} is needed to boot over NFS`);
    });
    include.forEach((pkg, i) => {
      if (/^linux-image-/.test(pkg)) fail(`packages.include[${i}]`, `${describe(pkg)} is a kernel: set it as \`kernel\` (it must be installed after dracut)`);
      if (pkg === 'initramfs-tools') fail(`packages.include[${i}]`, `${describe(pkg)} conflicts with dracut, which builds the NFS-root initrd`);
      if (exclude.includes(pkg)) fail(`packages.include[${i}]`, `${describe(pkg)} is also in packages.exclude`);
    });
  }

  const kernel = doc.kernel === undefined || doc.kernel === null ? DEFAULT_KERNEL[arch] : v.packageName(doc.kernel, 'kernel');
  if (!/^linux-image-/.test(kernel)) fail('kernel', `${describe(kernel)} is not a kernel package (linux-image-...)`);
  if (exclude.includes(kernel)) fail('kernel', `${describe(kernel)} is in packages.exclude`);

  const locale = v.matching(doc, 'locale', '', LOCALE, 'is not a locale like en_US.UTF-8 or C.UTF-8', false) ?? host.locale ?? 'C.UTF-8';
  const timezone = v.matching(doc, 'timezone', '', TIMEZONE, 'is not a time zone like Europe/Paris', false) ?? host.timezone ?? 'Etc/UTC';
  const keyboard = doc.keyboard === undefined || doc.keyboard === null ? host.keyboard : v.keyboard(doc.keyboard);

  const files = v.list(doc, 'files', '', (x, where) => v.file(x, where)) ?? [];
  files.forEach((f, i) => {
    if (files.findIndex((g) => g.path === f.path) !== i) fail(`files[${i}].path`, `${describe(f.path)} is listed twice`);
  });
  const postInstall = v.list(doc, 'postInstall', '', (x, where) => v.command(x, where)) ?? [];
  const kernelArgs = v.matching(doc, 'kernelArgs', '', /^[^\r\n]*$/, 'must be one line', false, true) ?? '';
  const overlay = v.oneOf(doc, 'overlay', '', ['tmpfs', 'none'] as const, 'tmpfs');
  const keepGenerations = v.int(doc, 'keepGenerations', 3, 1, 20);

  return {
    name, suite, arch, mirror, components, variant, packages: { include, exclude }, kernel, locale, timezone,
    ...(keyboard ? { keyboard } : {}), files, postInstall, kernelArgs: kernelArgs.trim(), overlay, keepGenerations, source,
  };
}

const LOCALE = /^(C|POSIX|C\.UTF-8|C\.utf8|[a-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[a-z]+)?)$/;
const TIMEZONE = /^(UTC|[A-Z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2})$/;

class Checker {
  constructor(private readonly fail: (key: string, problem: string) => never) {}

  noUnknown(o: Obj, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(join(path, k), `unknown key (expected one of: ${allowed.join(', ')})`);
  }

  matching(o: Obj, key: string, path: string, re: RegExp, problem: string, required: boolean, allowEmpty = false): string | undefined {
    const x = o[key];
    const where = join(path, key);
    if (x === undefined || x === null) {
      if (required) this.fail(where, 'is required');
      return undefined;
    }
    if (typeof x !== 'string' || (x.length === 0 && !allowEmpty)) this.fail(where, `must be a non-empty string, got ${describe(x)}`);
    return this.itemMatching(x, where, re, problem);
  }

  itemMatching(x: unknown, where: string, re: RegExp, problem: string): string {
    if (typeof x !== 'string') this.fail(where, `must be a string, got ${describe(x)}`);
    if (!re.test(x as string)) this.fail(where, `${describe(x)} ${problem}`);
    return x as string;
  }

  packageName(x: unknown, where: string): string {
    return this.itemMatching(x, where, PACKAGE_NAME, 'is not a Debian package name');
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, choices: readonly T[], fallback: T): T {
    const x = o[key];
    if (x === undefined || x === null) return fallback;
    if (typeof x !== 'string' || !(choices as readonly string[]).includes(x)) {
      this.fail(join(path, key), `must be one of ${choices.join(', ')}, got ${describe(x)}`);
    }
    return x as T;
  }

  int(o: Obj, key: string, fallback: number, min: number, max: number): number {
    const x = o[key];
    if (x === undefined || x === null) return fallback;
    if (typeof x !== 'number' || !Number.isInteger(x)) this.fail(key, `must be a whole number, got ${describe(x)}`);
    if ((x as number) < min || (x as number) > max) this.fail(key, `must be between ${min} and ${max}, got ${x}`);
    return x as number;
  }

  list<T>(o: Obj, key: string, path: string, item: (x: unknown, where: string) => T): T[] | undefined {
    const x = o[key];
    const where = join(path, key);
    if (x === undefined || x === null) return undefined;
    if (!Array.isArray(x)) this.fail(where, `must be a list, got ${describe(x)}`);
    return (x as unknown[]).map((el, i) => item(el, join(where, i)));
  }

  noDuplicates(items: string[], where: string): void {
    items.forEach((s, i) => { if (items.indexOf(s) !== i) this.fail(join(where, i), `${describe(s)} is listed twice`); });
  }

  keyboard(x: unknown): Keyboard {
    const word = /^[A-Za-z0-9_,:()+-]*$/;
    if (typeof x === 'string') return { model: 'pc105', layout: this.itemMatching(x, 'keyboard', /^[a-z0-9_,-]+$/, 'is not a keyboard layout like fr or us'), variant: '', options: '' };
    if (!isObj(x)) this.fail('keyboard', `must be a layout like fr, or a mapping {layout, model, variant, options}, got ${describe(x)}`);
    const o = x as Obj;
    this.noUnknown(o, ['layout', 'model', 'variant', 'options'], 'keyboard');
    const layout = this.matching(o, 'layout', 'keyboard', /^[a-z0-9_,-]+$/, 'is not a keyboard layout like fr or us', true)!;
    const field = (k: string, d: string) => this.matching(o, k, 'keyboard', word, 'has characters a keyboard setting does not use', false, true) ?? d;
    return { layout, model: field('model', 'pc105'), variant: field('variant', ''), options: field('options', '') };
  }

  file(x: unknown, where: string): RecipeFile {
    if (!isObj(x)) this.fail(where, `must be a mapping {path, content, mode}, got ${describe(x)}`);
    const o = x as Obj;
    this.noUnknown(o, ['path', 'content', 'mode'], where);
    const p = this.matching(o, 'path', where, /^\/[^\0]*$/, 'is not an absolute path in the root', true)!;
    if (p.split('/').includes('..')) this.fail(join(where, 'path'), `${describe(p)} contains ".." (files stay inside the root)`);
    const path = posix.normalize(p).replace(/\/+$/, '');
    if (path === '' || path === '/') this.fail(join(where, 'path'), `${describe(p)} names the root itself, not a file`);
    const content = o.content;
    if (typeof content !== 'string') this.fail(join(where, 'content'), content === undefined ? 'is required' : `must be a string, got ${describe(content)}`);
    let mode = 0o644;
    if (o.mode !== undefined && o.mode !== null) {
      // A bare 0644 is the decimal 644 in YAML 1.2: only a quoted octal string is unambiguous.
      if (typeof o.mode !== 'string' || !/^0?[0-7]{3,4}$/.test(o.mode)) {
        this.fail(join(where, 'mode'), `${describe(o.mode)} is not a quoted octal mode like "0644"`);
      }
      mode = parseInt(o.mode as string, 8);
    }
    return { path, content: content as string, mode };
  }

  command(x: unknown, where: string): string {
    if (typeof x !== 'string' || x.trim().length === 0) this.fail(where, `must be a non-empty shell command, got ${describe(x)}`);
    if (/[\r\n]/.test(x as string)) this.fail(where, `${describe(x)} spans several lines: write one command per list item`);
    return (x as string).trim();
  }
}

// ---------------------------------------------------------------------------------------------
// The server's own settings, the defaults a recipe inherits (SIDUS copies them into each root).

export interface HostPaths {
  sourcesList?: string;
  sourcesDir?: string;
  locale?: string;
  timezone?: string;
  localtime?: string;
  keyboard?: string;
}

const HOST_PATHS: Required<HostPaths> = {
  sourcesList: '/etc/apt/sources.list',
  sourcesDir: '/etc/apt/sources.list.d',
  locale: '/etc/default/locale',
  timezone: '/etc/timezone',
  localtime: '/etc/localtime',
  keyboard: '/etc/default/keyboard',
};

export function hostDefaults(paths: HostPaths = {}): HostDefaults {
  const p = { ...HOST_PATHS, ...paths };
  const localeVars = shellVars(readOptional(p.locale) ?? '');
  const lang = localeVars.LANG ?? localeVars.LC_ALL;
  let timezone = (readOptional(p.timezone) ?? '').trim() || undefined;
  if (!timezone) {
    try {
      timezone = /zoneinfo\/(.+)$/.exec(readlinkSync(p.localtime))?.[1];
    } catch { /* no /etc/localtime: UTC */ }
  }
  const kb = shellVars(readOptional(p.keyboard) ?? '');
  const keyboard = kb.XKBLAYOUT
    ? { model: kb.XKBMODEL || 'pc105', layout: kb.XKBLAYOUT, variant: kb.XKBVARIANT ?? '', options: kb.XKBOPTIONS ?? '' }
    : undefined;
  return {
    mirror: defaultMirror({ sourcesList: p.sourcesList, sourcesDir: p.sourcesDir }),
    ...(lang && LOCALE.test(lang) ? { locale: lang } : {}),
    ...(timezone && TIMEZONE.test(timezone) ? { timezone } : {}),
    ...(keyboard ? { keyboard } : {}),
  };
}

/**
 * The Debian mirror this machine's apt uses: the first enabled `deb` entry of
 * /etc/apt/sources.list (one-line format), then /etc/apt/sources.list.d/*.list and *.sources
 * (deb822) in name order, that is a Debian archive (a `main` component, and a path ending in
 * /debian or signed by debian-archive-keyring) and not the security archive. Third-party repositories (nodesource,
 * docker...) are skipped; with none found, deb.debian.org.
 */
export function defaultMirror(paths: { sourcesList?: string; sourcesDir?: string } = {}): string {
  const list = paths.sourcesList ?? HOST_PATHS.sourcesList;
  const dir = paths.sourcesDir ?? HOST_PATHS.sourcesDir;
  const entries: AptEntry[] = [...parseOneLine(readOptional(list) ?? '')];
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch { /* no sources.list.d */ }
  for (const n of names) {
    const text = readOptional(`${dir}/${n}`);
    if (text === undefined) continue;
    if (n.endsWith('.list')) entries.push(...parseOneLine(text));
    else if (n.endsWith('.sources')) entries.push(...parseDeb822(text));
  }
  const debian = entries.find((e) => {
    if (/security/.test(e.uri) || e.suites.every((s) => /[-/](security|updates)$/.test(s))) return false;
    if (!e.components.includes('main')) return false; // docker's ".../linux/debian stable", say
    return /\/debian\/?$/.test(e.uri) || /debian-archive-keyring/.test(e.signedBy ?? '');
  });
  return debian ? debian.uri.replace(/\/+$/, '') : FALLBACK_MIRROR;
}

interface AptEntry { uri: string; suites: string[]; components: string[]; signedBy?: string }

/** `deb [opt=val ...] uri suite component...`; deb-src, comments and cdrom: are ignored. */
export function parseOneLine(text: string): AptEntry[] {
  const out: AptEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m || !/^(https?|file|ftp):/.test(m[2]!)) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({ uri: m[2]!, suites: [m[3]!], components: m[4]!.trim().split(/\s+/).filter(Boolean), ...(signedBy ? { signedBy } : {}) });
  }
  return out;
}

/** deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Enabled: no` skips one). */
export function parseDeb822(text: string): AptEntry[] {
  const out: AptEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (/^\s*#/.test(raw)) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) {
        last = m[1]!.toLowerCase();
        fields[last] = m[2]!.trim();
      } else if (last && /^\s+\S/.test(raw)) {
        fields[last] += `\n${raw.trim()}`; // continuation line (an inline Signed-By key, say)
      }
    }
    if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue;
    if (/^(no|false)$/i.test(fields.enabled ?? '')) continue;
    const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
    const components = (fields.components ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.uris ?? '').split(/\s+/).filter(Boolean)) {
      if (!/^(https?|file|ftp):/.test(uri)) continue;
      out.push({ uri, suites, components, ...(fields['signed-by'] ? { signedBy: fields['signed-by'] } : {}) });
    }
  }
  return out;
}

function shellVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(raw);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

