/**
 * Option 93 (RFC 4578 2.1, IANA "Processor Architecture Types") to the
 * architectures Sidereal can boot. Pure, so the boot decision imports it too.
 */
import type { ClientArch } from '../boot/types.js';

export const ARCH_TABLE: ReadonlyMap<number, ClientArch> = new Map<number, ClientArch>([
  [0, 'bios'],        // x86 BIOS
  [6, 'efi32'],       // x86 UEFI (IA32)
  [7, 'efi64'],       // x64 UEFI (what OVMF sends, see captures)
  [9, 'efi64'],       // EBC: historically sent by x64 firmware for x64 UEFI
  [11, 'arm64'],      // ARM 64-bit UEFI
  [16, 'efi64-http'], // x64 UEFI HTTP boot (RFC 7230-based, IANA 16)
]);

/**
 * Absent option 93 means BIOS or a later stage (syslinux.efi, dracut) that
 * stopped sending it: BIOS, not flagged unknown. An unknown code falls back
 * to BIOS and is flagged so the operator can see it.
 */
export function archFromOption93(code: number | undefined): { arch: ClientArch; unknown: boolean } {
  if (code === undefined) return { arch: 'bios', unknown: false };
  const arch = ARCH_TABLE.get(code);
  return arch ? { arch, unknown: false } : { arch: 'bios', unknown: true };
}
