/** Field checks shared by machines, groups and roots: each throws an InventoryError naming the field. */
import { InventoryError } from './errors.js';
import { isIpv4, toInt, type Cidr } from '../net/ipv4.js';
import type { BootMode, Loader } from '../boot/types.js';

/** What the inventory needs to know of the network to check an address. */
export interface NetworkPolicy {
  subnets: Cidr[];
  serverAddress: string;
  pools: Array<{ start: string; end: string }>;
  /** The config's boot defaults: for the one-maintenance-machine-per-root rule (maintenance.ts). */
  bootDefaults?: { root: string | null; bootMode: BootMode };
}

const HOSTNAME_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** RFC 1123 host name: labels of letters, digits and inner hyphens, 63 bytes each, 253 in all. */
export function checkHostname(v: string): string {
  if (v.length > 253 || !v.split('.').every((l) => HOSTNAME_LABEL.test(l))) {
    throw new InventoryError('invalid', 'hostname', `${JSON.stringify(v)} is not an RFC 1123 host name`);
  }
  return v.toLowerCase();
}

export function checkIpv4(v: string, net?: NetworkPolicy): string {
  if (!isIpv4(v)) throw new InventoryError('invalid', 'ipv4', `${JSON.stringify(v)} is not an IPv4 address`);
  if (!net) return v;
  const subnet = net.subnets.find((s) => s.contains(v));
  if (!subnet) throw new InventoryError('invalid', 'ipv4', `${v} is outside the served subnets (${net.subnets.map((s) => s.text).join(', ')})`);
  if (v === subnet.network || v === subnet.broadcast) throw new InventoryError('invalid', 'ipv4', `${v} is the network or broadcast address of ${subnet.text}`);
  if (v === net.serverAddress) throw new InventoryError('invalid', 'ipv4', `${v} is the server's own address`);
  const n = toInt(v);
  for (const p of net.pools) {
    if (n >= toInt(p.start) && n <= toInt(p.end)) {
      throw new InventoryError('invalid', 'ipv4', `${v} is inside the dynamic pool ${p.start}-${p.end}; pick a static address outside it`);
    }
  }
  return v;
}

export function checkName(field: string, v: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(v)) {
    throw new InventoryError('invalid', field, `${JSON.stringify(v)} must be 1-63 of a-z 0-9 . _ - starting with a letter or digit`);
  }
  return v;
}

export function checkBootMode(v: string): BootMode {
  if (v !== 'root' && v !== 'maintenance' && v !== 'local') {
    throw new InventoryError('invalid', 'bootMode', `${JSON.stringify(v)} must be root, maintenance or local`);
  }
  return v;
}

export function checkLoader(v: string): Loader {
  if (v !== 'pxelinux' && v !== 'lpxelinux' && v !== 'ipxe') {
    throw new InventoryError('invalid', 'loader', `${JSON.stringify(v)} must be pxelinux, lpxelinux or ipxe`);
  }
  return v;
}

/** Kernel arguments go on one APPEND line: no line breaks, nothing that would end the menu entry. */
export function checkKernelArgs(field: string, v: string): string {
  if (/[\r\n\0]/.test(v) || v.length > 2048) {
    throw new InventoryError('invalid', field, 'must be one line of at most 2048 characters');
  }
  return v.trim();
}

/** File names published in the TFTP root: a relative path with no `..`. */
export function checkBootFileName(field: string, v: string): string {
  if (!v || v.startsWith('/') || v.split('/').some((s) => s === '..' || s === '') || /[\0\\\s]/.test(v)) {
    throw new InventoryError('invalid', field, `${JSON.stringify(v)} must be a relative file name in the TFTP root`);
  }
  return v;
}
