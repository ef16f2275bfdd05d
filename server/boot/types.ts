/**
 * The contract between the protocol servers (DHCP, TFTP, HTTP) and the boot
 * decision. Protocol code never decides what a machine boots: it describes
 * the client (ClientFacts) and asks the decision (BootBackend), as
 * pixiecore's Booter and smee's backend do. `explain` calls the same
 * functions, so what it prints is what the wire carries.
 */

/** Client architecture, from DHCP option 93 (RFC 4578, IANA registry). */
export type ClientArch = 'bios' | 'efi32' | 'efi64' | 'efi64-http' | 'arm64';

/** What loads the kernel: pxelinux (TFTP only), lpxelinux (menu by TFTP, files by HTTP), or iPXE. */
export type Loader = 'pxelinux' | 'lpxelinux' | 'ipxe';

/** root: the shared root read-only with a RAM overlay; maintenance: read-write; local: boot the local disk. */
export type BootMode = 'root' | 'maintenance' | 'local';

/** What a DHCP request tells us about the client. */
export interface ClientFacts {
  /** Normalised MAC, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  /** Option 93 value when sent; absent after the firmware exchange (syslinux.efi, dracut). */
  archCode?: number;
  /** Option 77 is `iPXE` or option 175 is present: the client is already running iPXE. */
  isIpxe: boolean;
  /** Option 60 started with `HTTPClient` (UEFI HTTP boot). */
  httpClient?: boolean;
}

/** The boot part of a DHCP reply. */
export interface DhcpBootAnswer {
  arch: ClientArch;
  /** The option-93 value was not in our table and we fell back to BIOS. */
  archUnknown: boolean;
  /** Option 67 and the BOOTP `file` field: a TFTP path or an http:// URL. */
  bootFile: string;
  /** siaddr (next-server) and option 66. */
  nextServer: string;
  /**
   * Option 60 in the reply (only when the client sent one): `HTTPClient` for
   * HTTP boot, otherwise `PXEClient`, which goes with option 43 sub-option 6 = 8
   * ("use the boot file in this offer") or OVMF looks for a proxyDHCP server.
   */
  vendorClass: 'PXEClient' | 'HTTPClient';
}

/** A static reservation: a registered machine's address and name. */
export interface Reservation {
  ipv4: string;
  hostname: string | null;
}

export type BootStage = 'dhcp' | 'tftp' | 'http' | 'kernel' | 'nfs' | 'booted';

/** The tree a menu or script sends a machine to: the NFS export manager keeps it exported while the machine may run it. */
export interface BootTarget {
  root: string;
  /** The generation directory itself (`current` resolved when the menu was made). */
  nfsPath: string;
  mode: 'root' | 'maintenance';
}

/** What the boot decision answers to the TFTP and HTTP servers for a path; `mac` is the machine it is for, when known (for logs and events). */
export type ServedFile =
  | { kind: 'static'; path: string; mac?: string }    // absolute path on disk, already checked to be inside its root
  | { kind: 'virtual'; content: Buffer; mac?: string; boots?: BootTarget } // rendered on the fly (menus, iPXE scripts)
  | { kind: 'missing'; reason: string };
