/**
 * Installs the network bootloaders Debian ships into a TFTP root, the layout
 * SIDUS uses: BIOS pxelinux and its modules at the top, `efi64/` and `efi32/`
 * each with syslinux.efi, its ldlinux and the c32 modules of that
 * architecture, and iPXE's chain loaders when the `ipxe` package is there.
 *
 * Files are copied, never symlinked: a TFTP server that confines reads to its
 * root must not follow links out of it. A copy is skipped when the target
 * already has the same size and content, so running this again is cheap and
 * changes nothing.
 */
import { constants as fsc } from 'node:fs';
import { access, copyFile, lstat, mkdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';

/** One file to install: where Debian puts it, where it goes under the TFTP root, which package ships it. */
export interface BootloaderSource {
  /** Path relative to the TFTP root. */
  dest: string;
  /** Absolute path on this host. */
  src: string;
  /** Debian package that ships `src`. */
  package: string;
  /** A missing optional file is reported, not fatal. */
  optional: boolean;
}

export interface InstallResult {
  /** TFTP-root-relative paths present after the call (copied now or already identical). */
  installed: string[];
  /** Optional files that are absent on this host, with the package that would provide them. */
  missing: Array<{ file: string; package: string }>;
}

export interface InstallOptions {
  logger?: Logger;
  /** Override the host locations (tests). */
  sources?: BootloaderSource[];
}

export class BootloaderMissingError extends Error {
  constructor(public readonly missing: Array<{ file: string; src: string; package: string }>) {
    const pkgs = [...new Set(missing.map((m) => m.package))];
    super(
      `bootloader files missing on this host: ${missing.map((m) => `${m.src} (package ${m.package})`).join(', ')}; ` +
        `install them with: apt-get install ${pkgs.join(' ')}`,
    );
    this.name = 'BootloaderMissingError';
  }
}

const PXELINUX_DIR = '/usr/lib/PXELINUX';
const SYSLINUX_EFI_DIR = '/usr/lib/SYSLINUX.EFI';
const MODULES_DIR = '/usr/lib/syslinux/modules';
const IPXE_DIR = '/usr/lib/ipxe';

/** The c32 modules a menu needs: the ldlinux loader is listed separately per architecture. */
export const COM32_MODULES = ['libcom32.c32', 'libutil.c32', 'menu.c32', 'vesamenu.c32'] as const;

/** The files installBootloaders copies, in order, from Debian's standard locations. */
export function defaultBootloaderSources(): BootloaderSource[] {
  const out: BootloaderSource[] = [
    { dest: 'pxelinux.0', src: `${PXELINUX_DIR}/pxelinux.0`, package: 'pxelinux', optional: false },
    { dest: 'lpxelinux.0', src: `${PXELINUX_DIR}/lpxelinux.0`, package: 'pxelinux', optional: false },
    { dest: 'ldlinux.c32', src: `${MODULES_DIR}/bios/ldlinux.c32`, package: 'syslinux-common', optional: false },
  ];
  for (const m of COM32_MODULES) {
    out.push({ dest: m, src: `${MODULES_DIR}/bios/${m}`, package: 'syslinux-common', optional: false });
  }
  for (const [arch, ldlinux] of [['efi64', 'ldlinux.e64'], ['efi32', 'ldlinux.e32']] as const) {
    out.push({ dest: `${arch}/syslinux.efi`, src: `${SYSLINUX_EFI_DIR}/${arch}/syslinux.efi`, package: 'syslinux-efi', optional: false });
    out.push({ dest: `${arch}/${ldlinux}`, src: `${MODULES_DIR}/${arch}/${ldlinux}`, package: 'syslinux-common', optional: false });
    for (const m of COM32_MODULES) {
      out.push({ dest: `${arch}/${m}`, src: `${MODULES_DIR}/${arch}/${m}`, package: 'syslinux-common', optional: false });
    }
  }
  for (const f of ['undionly.kpxe', 'snponly.efi', 'ipxe.efi']) {
    out.push({ dest: f, src: `${IPXE_DIR}/${f}`, package: 'ipxe', optional: true });
  }
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, fsc.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    // lstat the target: a symlink there is replaced by a real copy even when it points at the same bytes.
    const [sa, sb] = await Promise.all([stat(a), lstat(b)]);
    if (!sb.isFile() || sa.size !== sb.size) return false;
    const [ba, bb] = await Promise.all([readFile(a), readFile(b)]);
    return ba.equals(bb);
  } catch {
    return false;
  }
}

/**
 * Copy the bootloaders into `tftpRoot` (created if needed). Throws
 * BootloaderMissingError, naming the Debian packages, when a required file is
 * absent; nothing is copied in that case.
 */
export async function installBootloaders(tftpRoot: string, opts: InstallOptions = {}): Promise<InstallResult> {
  const log = opts.logger?.child({ svc: 'bootloaders' });
  const sources = opts.sources ?? defaultBootloaderSources();
  const root = path.resolve(tftpRoot);

  const present = await Promise.all(sources.map((s) => exists(s.src)));
  const requiredMissing = sources.filter((s, i) => !present[i] && !s.optional);
  if (requiredMissing.length > 0) {
    throw new BootloaderMissingError(requiredMissing.map((s) => ({ file: s.dest, src: s.src, package: s.package })));
  }

  const result: InstallResult = { installed: [], missing: [] };
  for (const [i, s] of sources.entries()) {
    if (!present[i]) {
      result.missing.push({ file: s.dest, package: s.package });
      log?.warn({ file: s.dest, src: s.src, package: s.package }, 'optional bootloader not installed on this host');
      continue;
    }
    const dest = path.resolve(root, s.dest);
    if (dest !== root && !dest.startsWith(root + path.sep)) {
      throw new Error(`bootloader destination escapes the TFTP root: ${s.dest}`);
    }
    await mkdir(path.dirname(dest), { recursive: true });
    if (await sameContent(s.src, dest)) {
      log?.debug({ file: s.dest }, 'bootloader already up to date');
    } else {
      // Copy to a temporary name then rename, so a TFTP client never reads half a file.
      const tmp = `${dest}.tmp-${process.pid}`;
      await copyFile(s.src, tmp);
      await rename(tmp, dest);
      log?.info({ file: s.dest, src: s.src }, 'bootloader installed');
    }
    result.installed.push(s.dest);
  }
  return result;
}
