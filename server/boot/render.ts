/**
 * Renders what a node fetches: its pxelinux menu and its iPXE script, from
 * the boot plan, with the nunjucks templates in boot-templates/. The kernel
 * command line is built here once, the SIDUS way: NFS root read-only with a
 * RAM overlay, or read-write with no overlay for the maintenance node.
 */
import nunjucks from 'nunjucks';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SiderealConfig } from '../config/config.js';
import type { BootPlan } from './decide.js';
import type { BootTarget } from './types.js';
import { resolveTree } from '../nfs/wanted.js';

function templatesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = resolve(dir, '..')) {
    if (existsSync(join(dir, 'boot-templates', 'pxelinux.cfg.njk'))) return join(dir, 'boot-templates');
  }
  throw new Error('cannot find boot-templates/ next to the sidereal sources');
}

let env: nunjucks.Environment | undefined;
function templates(): nunjucks.Environment {
  // Plain-text outputs: no HTML autoescape; an undefined variable is a bug, not an empty string.
  env ??= new nunjucks.Environment(new nunjucks.FileSystemLoader(templatesDir(), { noCache: false }), {
    autoescape: false, throwOnUndefined: true, trimBlocks: false,
  });
  return env;
}

export interface BootEntry {
  label: string;
  title: string;
  kernel: string;
  initrd: string;
  kernelUrl: string;
  initrdUrl: string;
  /** Everything after the kernel on the command line, `initrd=` first (pxelinux and EFI stubs need it). */
  append: string;
}

/**
 * The tree the plan boots: the root's `current` resolved to its generation, so a node mounts
 * (and the exports keep) one generation for as long as it runs, whatever rebuilds happen.
 */
export function bootTarget(plan: BootPlan): BootTarget | undefined {
  const root = plan.rootRecord;
  if (plan.bootMode.value === 'local' || !root) return undefined;
  return { root: root.name, nfsPath: resolveTree(root.nfsPath) ?? root.nfsPath, mode: plan.bootMode.value };
}

/** The entry a plan boots, or why it boots the local disk instead. */
export function bootEntry(plan: BootPlan, config: SiderealConfig): { entry?: BootEntry; problem?: string } {
  if (plan.bootMode.value === 'local') return {};
  if (!plan.root.value) return { problem: 'no root is assigned (machine, group or boot.defaults.root): booting the local disk' };
  const root = plan.rootRecord;
  if (!root) return { problem: `root ${plan.root.value} does not exist in the inventory: booting the local disk` };
  const maintenance = plan.bootMode.value === 'maintenance';
  const lpx = plan.loader.value === 'lpxelinux';
  const url = (f: string) => `${config.http.publicUrl}/files/${f}`;
  const args = [
    `initrd=${lpx ? url(root.initrd) : root.initrd}`,
    'ip=dhcp',
    `root=nfs:${config.nfs.server}:${bootTarget(plan)!.nfsPath}:${config.nfs.options}`,
    maintenance ? 'rw' : 'ro',
    // Read by the dracut module: a tmpfs overlay for shared nodes, none for the one read-write node.
    `sidereal.overlay=${maintenance ? 'none' : 'tmpfs'}`,
    plan.hostname ? `sidereal.hostname=${plan.hostname}` : '',
    // Where the root's sidereal-booted unit reports that the node is up (the boot timeline's end).
    `sidereal.url=${config.http.publicUrl}`,
    plan.kernelArgs.root, plan.kernelArgs.default, plan.kernelArgs.group, plan.kernelArgs.machine,
  ].filter(Boolean);
  return {
    entry: {
      label: maintenance ? 'maintenance' : 'root',
      title: maintenance ? `${root.name} read-write (maintenance)` : `${root.name} (shared, RAM overlay)`,
      kernel: lpx ? url(root.kernel) : root.kernel,
      initrd: root.initrd,
      kernelUrl: url(root.kernel),
      initrdUrl: url(root.initrd),
      append: args.join(' '),
    },
  };
}

function context(plan: BootPlan, config: SiderealConfig) {
  const { entry, problem } = bootEntry(plan, config);
  return {
    who: plan.known ? `${plan.hostname ?? 'unnamed'} (${plan.mac})` : 'unknown clients',
    root: plan.root.value,
    bootMode: plan.bootMode.value,
    bootModeFrom: plan.bootMode.from,
    loader: plan.loader.value,
    serverAddress: config.serverAddress,
    defaultLabel: entry?.label ?? 'local',
    entry: entry ?? null,
    problem: problem ?? null,
  };
}

export function renderPxelinuxMenu(plan: BootPlan, config: SiderealConfig): string {
  return templates().render('pxelinux.cfg.njk', context(plan, config)) + '\n';
}

export function renderIpxeScript(plan: BootPlan, config: SiderealConfig): string {
  return templates().render('ipxe.njk', context(plan, config)) + '\n';
}
