/**
 * What a path asked over TFTP or HTTP serves. pxelinux's whole lookup chain
 * is answered as pxelinux asks it (RFC-less, see syslinux's PXELINUX doc):
 * `pxelinux.cfg/<UUID>`, `01-<mac>`, the client IP in upper-case hex
 * shortened one digit at a time, then `default`. We answer the per-MAC name
 * for registered machines and `default` for everyone else; the UUID and IP
 * names get "not found" so pxelinux walks on to the right one.
 * `syslinux.efi` asks everything under its own directory (`efi64/...`): as
 * SIDUS's links did, a name under efi32/ or efi64/ that is not there is
 * looked up at the top of the TFTP root.
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import type { ServedFile } from './types.js';
import { planFor } from './decide.js';
import { renderPxelinuxMenu, renderIpxeScript, bootTarget } from './render.js';
import { resolveStatic } from '../tftp/files.js';
import { normalizeMac } from '../inventory/mac.js';

const MENU_PATH = /^(?:(efi32|efi64)\/)?pxelinux\.cfg\/([^/]+)$/;
const MAC_MENU = /^01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i;
const ARCH_PREFIX = /^(efi32|efi64)\//;

export function serveBootPath(inv: Inventory, config: SiderealConfig, requested: string): ServedFile {
  const clean = requested.replace(/^\/+/, '');
  const menu = MENU_PATH.exec(clean);
  if (menu) return menuFile(inv, config, menu[2]!);
  const found = resolveStatic(config.tftp.root, clean);
  if (found.kind === 'missing' && found.reason === 'not found' && ARCH_PREFIX.test(clean)) {
    return resolveStatic(config.tftp.root, clean.replace(ARCH_PREFIX, ''));
  }
  return found;
}

function menuFile(inv: Inventory, config: SiderealConfig, name: string): ServedFile {
  if (name === 'default') {
    const plan = planFor(inv, config, '');
    return { kind: 'virtual', content: Buffer.from(renderPxelinuxMenu(plan, config)), boots: bootTarget(plan) };
  }
  const m = MAC_MENU.exec(name);
  if (!m) return { kind: 'missing', reason: 'not found' };
  let mac: string;
  try {
    mac = normalizeMac(m[1]!);
  } catch {
    return { kind: 'missing', reason: 'not found' };
  }
  const plan = planFor(inv, config, mac);
  // Unknown MAC: "not found" makes pxelinux go on to `default`, the menu for unknown clients.
  if (!plan.known) return { kind: 'missing', reason: `not found: ${mac} is not registered` };
  return { kind: 'virtual', content: Buffer.from(renderPxelinuxMenu(plan, config)), mac, boots: bootTarget(plan) };
}

/** `/boot/<mac>.ipxe`: the iPXE script of a machine (unknown MACs get the defaults' script). */
export function ipxeScriptFor(inv: Inventory, config: SiderealConfig, mac: string): ServedFile {
  const plan = planFor(inv, config, mac);
  return { kind: 'virtual', content: Buffer.from(renderIpxeScript(plan, config)), mac, boots: bootTarget(plan) };
}
