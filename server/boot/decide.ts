/**
 * The boot decision: "what does this machine boot, for this architecture".
 * DHCP, TFTP, HTTP and `explain` all call it, so what `explain` shows is
 * what the wire carries. Pure over an inventory read: no sockets here.
 *
 * Settings resolve machine > group > config defaults, and each effective
 * value says which level it came from.
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory, Machine, Group, Root } from '../inventory/index.js';
import type { BootMode, ClientArch, ClientFacts, DhcpBootAnswer, Loader } from './types.js';
import { archFromOption93 } from '../dhcp/arch.js';

export type Level = 'machine' | 'group' | 'default';

export interface Effective<T> {
  value: T;
  from: Level;
}

export interface BootPlan {
  mac: string;
  /** Registered in the inventory. */
  known: boolean;
  machine?: Machine;
  group?: Group;
  hostname: string | null;
  ipv4: string | null;
  root: Effective<string | null>;
  /** The root's record; absent when no root is set or the name is dangling. */
  rootRecord?: Root;
  bootMode: Effective<BootMode>;
  loader: Effective<Loader>;
  bootFiles: Record<ClientArch, Effective<string>>;
  /** Extra kernel arguments by level, appended in this order after the root's own. */
  kernelArgs: { root: string; default: string; group: string; machine: string };
}

function pick<T>(machine: T | null | undefined, group: T | null | undefined, fallback: T): Effective<T> {
  if (machine !== null && machine !== undefined) return { value: machine, from: 'machine' };
  if (group !== null && group !== undefined) return { value: group, from: 'group' };
  return { value: fallback, from: 'default' };
}

export function planFor(inv: Inventory, config: SiderealConfig, mac: string): BootPlan {
  const machine = inv.machines.get(mac);
  const group = machine?.group ? inv.groups.get(machine.group) : undefined;
  const d = config.boot.defaults;
  const root = pick(machine?.root, group?.root, d.root ?? null);
  const bootFiles = {} as Record<ClientArch, Effective<string>>;
  for (const arch of Object.keys(config.boot.files) as ClientArch[]) {
    bootFiles[arch] = pick(undefined, group?.bootFiles?.[arch], config.boot.files[arch]);
  }
  const rootRecord = root.value ? inv.roots.get(root.value) : undefined;
  return {
    mac,
    known: !!machine,
    machine,
    group,
    hostname: machine?.hostname ?? null,
    ipv4: machine?.ipv4 ?? null,
    root,
    rootRecord,
    bootMode: pick(machine?.bootMode, group?.bootMode, d.bootMode),
    loader: pick(undefined, group?.loader, d.loader),
    bootFiles,
    kernelArgs: {
      root: rootRecord?.kernelArgs ?? '',
      default: d.kernelArgs,
      group: group?.kernelArgs ?? '',
      machine: machine?.kernelArgs ?? '',
    },
  };
}

/** iPXE binaries chained for the `ipxe` loader (Debian's `ipxe` package), by firmware. */
const IPXE_FILES: Partial<Record<ClientArch, string>> = { bios: 'undionly.kpxe', efi64: 'snponly.efi' };

/**
 * The boot file a DHCP reply carries. Order matters, as in smee's dhcp.go:
 * 1. a client already running iPXE gets its per-MAC script over HTTP, so it
 *    never chainloads iPXE again (the iPXE loop);
 * 2. UEFI HTTP boot gets an http:// URL and option 60 HTTPClient;
 * 3. otherwise the loader's file for the architecture (option 93 table,
 *    overridable per group).
 */
export function dhcpBootAnswer(plan: BootPlan, facts: ClientFacts, config: SiderealConfig): DhcpBootAnswer {
  const { arch, unknown } = archFromOption93(facts.archCode);
  const base: Omit<DhcpBootAnswer, 'bootFile'> = {
    arch, archUnknown: unknown, nextServer: config.serverAddress, vendorClass: 'PXEClient',
  };
  if (facts.isIpxe) return { ...base, bootFile: ipxeScriptUrl(config, plan.mac) };
  if (arch === 'efi64-http' || facts.httpClient) {
    const file = plan.bootFiles['efi64-http'].value;
    return { ...base, vendorClass: 'HTTPClient', bootFile: /^https?:\/\//.test(file) ? file : `${config.http.publicUrl}/files/${file}` };
  }
  const loader = plan.loader.value;
  if (loader === 'ipxe' && IPXE_FILES[arch] && plan.bootFiles[arch].from === 'default') return { ...base, bootFile: IPXE_FILES[arch]! };
  if (loader === 'lpxelinux' && arch === 'bios' && plan.bootFiles.bios.from === 'default') return { ...base, bootFile: 'lpxelinux.0' };
  return { ...base, bootFile: plan.bootFiles[arch].value };
}

export function ipxeScriptUrl(config: SiderealConfig, mac: string): string {
  return `${config.http.publicUrl}/boot/${mac}.ipxe`;
}

/** Convenience for the protocol servers: plan + answer in one call. */
export function bootAnswerFor(inv: Inventory, config: SiderealConfig, facts: ClientFacts): DhcpBootAnswer {
  return dhcpBootAnswer(planFor(inv, config, facts.mac), facts, config);
}
