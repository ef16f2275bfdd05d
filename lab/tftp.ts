/**
 * The lab's TFTP root: Debian's bootloaders (installBootloaders), the lab
 * kernel and marker initrd under SIDUS names (`vmlinuz-<ver>@lab`), and, for
 * servers that do not render menus themselves (dnsmasq), static per-MAC
 * pxelinux menus.
 */
import { copyFile, mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { installBootloaders, type InstallResult } from '../server/boot/bootloaders.js';
import type { LabAssets } from './assets.js';

export const LAB_ROOT_NAME = 'lab';

export interface LabBootFiles {
  /** TFTP-root-relative names. */
  kernel: string;
  initrd: string;
  bootloaders: InstallResult;
}

export function labKernelName(assets: LabAssets, root = LAB_ROOT_NAME): string {
  return `vmlinuz-${assets.kernelVersion}@${root}`;
}
export function labInitrdName(assets: LabAssets, root = LAB_ROOT_NAME): string {
  return `initrd.img-${assets.kernelVersion}@${root}`;
}

async function copyInto(src: string, dest: string): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  await copyFile(src, dest + '.tmp');
  await rename(dest + '.tmp', dest);
}

/** Install bootloaders, kernel and initrd into `tftpRoot`. */
export async function populateTftpRoot(tftpRoot: string, assets: LabAssets, root = LAB_ROOT_NAME): Promise<LabBootFiles> {
  const bootloaders = await installBootloaders(tftpRoot);
  const kernel = labKernelName(assets, root);
  const initrd = labInitrdName(assets, root);
  await copyInto(assets.kernel, path.join(tftpRoot, kernel));
  await copyInto(assets.initrd, path.join(tftpRoot, initrd));
  return { kernel, initrd, bootloaders };
}

/** `52:54:00:77:00:10` -> `01-52-54-00-77-00-10` (pxelinux's per-MAC config name). */
export function pxelinuxMacName(mac: string): string {
  return `01-${mac.toLowerCase().replace(/:/g, '-')}`;
}

/**
 * A static menu for dnsmasq runs, written where both clients look:
 * `pxelinux.cfg/01-<mac>` (BIOS pxelinux) and `efi64/pxelinux.cfg/01-<mac>`
 * (syslinux.efi takes the directory it was loaded from as its prefix). Paths
 * in the efi64 copy start with `::` (absolute from the TFTP root, no prefix),
 * so one kernel copy serves both.
 */
export async function writeStaticMenu(
  tftpRoot: string, mac: string, files: { kernel: string; initrd: string }, hostname: string, extraArgs = '',
): Promise<string[]> {
  const name = pxelinuxMacName(mac);
  const written: string[] = [];
  for (const [dir, prefix] of [['pxelinux.cfg', ''], ['efi64/pxelinux.cfg', '::']] as const) {
    const body = [
      'DEFAULT lab',
      'PROMPT 0',
      'TIMEOUT 0',
      'LABEL lab',
      `  KERNEL ${prefix}${files.kernel}`,
      `  APPEND initrd=${prefix}${files.initrd} console=ttyS0 sidereal.hostname=${hostname}${extraArgs ? ' ' + extraArgs : ''}`,
      '',
    ].join('\n');
    const rel = `${dir}/${name}`;
    await mkdir(path.join(tftpRoot, dir), { recursive: true });
    await writeFile(path.join(tftpRoot, rel), body);
    written.push(rel);
  }
  return written;
}
