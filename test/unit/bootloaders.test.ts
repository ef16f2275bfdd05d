import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BootloaderMissingError,
  defaultBootloaderSources,
  installBootloaders,
  type BootloaderSource,
} from '../../server/boot/bootloaders.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sid-bl-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fakeSources(): Promise<BootloaderSource[]> {
  const src = path.join(dir, 'src');
  await mkdir(src, { recursive: true });
  const mk = async (name: string, body: string) => {
    const p = path.join(src, name);
    await writeFile(p, body);
    return p;
  };
  return [
    { dest: 'pxelinux.0', src: await mk('pxelinux.0', 'PXE'), package: 'pxelinux', optional: false },
    { dest: 'efi64/syslinux.efi', src: await mk('syslinux64.efi', 'EFI64'), package: 'syslinux-efi', optional: false },
    { dest: 'undionly.kpxe', src: path.join(src, 'absent.kpxe'), package: 'ipxe', optional: true },
  ];
}

describe('installBootloaders with fake sources', () => {
  it('copies files (not links) into subdirectories and reports optional ones missing', async () => {
    const sources = await fakeSources();
    const root = path.join(dir, 'tftp');
    const r = await installBootloaders(root, { sources });
    expect(r.installed).toEqual(['pxelinux.0', 'efi64/syslinux.efi']);
    expect(r.missing).toEqual([{ file: 'undionly.kpxe', package: 'ipxe' }]);
    expect(await readFile(path.join(root, 'efi64/syslinux.efi'), 'utf8')).toBe('EFI64');
    expect((await lstat(path.join(root, 'pxelinux.0'))).isSymbolicLink()).toBe(false);
  });

  it('is idempotent and leaves identical files untouched', async () => {
    const sources = await fakeSources();
    const root = path.join(dir, 'tftp');
    await installBootloaders(root, { sources });
    const before = await stat(path.join(root, 'pxelinux.0'));
    await new Promise((r) => setTimeout(r, 20));
    const r2 = await installBootloaders(root, { sources });
    expect(r2.installed).toEqual(['pxelinux.0', 'efi64/syslinux.efi']);
    const after = await stat(path.join(root, 'pxelinux.0'));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('replaces a stale file and a symlink with a real copy', async () => {
    const sources = await fakeSources();
    const root = path.join(dir, 'tftp');
    await mkdir(path.join(root, 'efi64'), { recursive: true });
    await writeFile(path.join(root, 'pxelinux.0'), 'OLD');
    await symlink(sources[1]!.src, path.join(root, 'efi64/syslinux.efi'));
    await installBootloaders(root, { sources });
    expect(await readFile(path.join(root, 'pxelinux.0'), 'utf8')).toBe('PXE');
    expect((await lstat(path.join(root, 'efi64/syslinux.efi'))).isSymbolicLink()).toBe(false);
  });

  it('fails naming the Debian package when a required file is absent, copying nothing', async () => {
    const sources = await fakeSources();
    sources[1] = { ...sources[1]!, src: path.join(dir, 'nope.efi') };
    const root = path.join(dir, 'tftp');
    const err = await installBootloaders(root, { sources }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootloaderMissingError);
    expect((err as Error).message).toContain('syslinux-efi');
    expect((err as Error).message).toContain('apt-get install');
    expect(existsSync(path.join(root, 'pxelinux.0'))).toBe(false);
  });

  it('refuses a destination outside the root', async () => {
    const sources = await fakeSources();
    const evil: BootloaderSource[] = [{ ...sources[0]!, dest: '../escape' }];
    await expect(installBootloaders(path.join(dir, 'tftp'), { sources: evil })).rejects.toThrow(/escapes/);
  });
});

describe('default Debian layout', () => {
  const sources = defaultBootloaderSources();

  it('lists the SIDUS layout', () => {
    const dests = sources.map((s) => s.dest);
    for (const f of [
      'pxelinux.0', 'lpxelinux.0', 'ldlinux.c32', 'libcom32.c32', 'libutil.c32', 'menu.c32', 'vesamenu.c32',
      'efi64/syslinux.efi', 'efi64/ldlinux.e64', 'efi64/libcom32.c32', 'efi64/vesamenu.c32',
      'efi32/syslinux.efi', 'efi32/ldlinux.e32', 'efi32/libutil.c32',
      'undionly.kpxe', 'snponly.efi', 'ipxe.efi',
    ]) expect(dests).toContain(f);
    expect(sources.filter((s) => s.optional).every((s) => s.package === 'ipxe')).toBe(true);
  });

  const haveSyslinux = existsSync('/usr/lib/PXELINUX/pxelinux.0') && existsSync('/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi');
  it.skipIf(!haveSyslinux)('installs the real files from this host', async () => {
    const root = path.join(dir, 'tftp');
    const r = await installBootloaders(root);
    expect(r.installed).toContain('efi64/ldlinux.e64');
    expect(r.installed.length + r.missing.length).toBe(sources.length);
    const a = await readFile(path.join(root, 'pxelinux.0'));
    const b = await readFile('/usr/lib/PXELINUX/pxelinux.0');
    expect(a.equals(b)).toBe(true);
  });
});
