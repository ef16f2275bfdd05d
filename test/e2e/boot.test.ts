/**
 * End to end: real firmware network-boots from `sidereal serve` in a lab
 * namespace to the marker initrd.
 *  - BIOS: SeaBIOS + QEMU's iPXE ROM -> iPXE script over HTTP -> pxelinux.0
 *    over TFTP -> per-MAC menu -> kernel + initrd.
 *  - UEFI: OVMF's own PXE (no option ROM) -> efi64/syslinux.efi -> menu ->
 *    kernel + initrd.
 * Needs root, qemu-system-x86, ovmf, pxelinux, syslinux-efi, busybox-static
 * and a built Sidereal (bin/sidereal.js -> dist/). Skipped otherwise.
 * Each boot takes 10-45 s under TCG.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultCacheDir, prepareLabAssets, type LabAssets } from '../../lab/assets.js';
import { bootAgainst, type BootRunResult, type LabNode } from '../../lab/bootrun.js';
import { canCreateNamespaces, destroyAllNamespaces } from '../../lab/netns.js';
import { createLabNetwork, type LabNetwork } from '../../lab/network.js';
import { stopAllTracked } from '../../lab/proc.js';
import { haveQemu, OVMF_CODE } from '../../lab/qemu.js';
import { siderealReady } from '../../lab/sidereal.js';
import { labInitrdName, labKernelName, pxelinuxMacName } from '../../lab/tftp.js';

const BOOT_TIMEOUT_MS = 200_000;
const TEST_TIMEOUT_MS = 240_000;

const runnable =
  process.getuid?.() === 0 &&
  existsSync('/usr/lib/PXELINUX/pxelinux.0') &&
  existsSync('/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi') &&
  existsSync('/bin/busybox') &&
  process.env.SIDEREAL_SKIP_E2E !== '1';

let ready = false;
let assets: LabAssets;
let net: LabNetwork;
let work: string;

beforeAll(async () => {
  // A developer without root or QEMU sees these skipped; CI installs everything, so there a skip would hide a failure.
  if (!runnable) {
    if (process.env.CI) throw new Error('CI must run the e2e boots: needs root, pxelinux, syslinux-efi and busybox-static');
    return;
  }
  if (!(await canCreateNamespaces()) || !(await haveQemu()) || !(await siderealReady())) {
    if (process.env.CI) throw new Error('CI must run the e2e boots: cannot create namespaces, run QEMU or find the built CLI');
    return;
  }
  assets = await prepareLabAssets(defaultCacheDir());
  net = await createLabNetwork({ taps: 4 });
  work = await mkdtemp(path.join(tmpdir(), 'sidereal-e2e-'));
  ready = true;
}, 600_000);

afterAll(async () => {
  await stopAllTracked();
  await net?.destroy();
  await destroyAllNamespaces();
  if (work) await rm(work, { recursive: true, force: true });
});

function tftpFiles(r: BootRunResult): string[] {
  return (r.events ?? []).filter((e) => e.stage === 'tftp' && (e.detail.outcome ?? 'ok') === 'ok').map((e) => String(e.detail.file ?? ''));
}

function expectServed(files: string[], wanted: string): void {
  // A file may be logged with a directory prefix (efi64/...); match on the tail.
  expect(files.some((f) => f === wanted || f.endsWith('/' + wanted)), `${wanted} in ${JSON.stringify(files)}`).toBe(true);
}

function httpFiles(r: BootRunResult): string[] {
  return (r.events ?? []).filter((e) => e.stage === 'http').map((e) => String(e.detail.file));
}

/** Boot one lab node from `sidereal serve` on its own tap, into its own work dir. */
function bootFromSidereal(node: LabNode, firmware: 'bios' | 'uefi', tap: number, dir: string): Promise<BootRunResult> {
  return bootAgainst({
    server: 'sidereal', firmware, uefiRom: 'none', net, tap: net.taps[tap], assets, node,
    workDir: path.join(work, dir), timeoutMs: BOOT_TIMEOUT_MS,
  });
}

function describeFailure(r: BootRunResult): string {
  return `${r.error ?? ''}\n--- serial (tail) ---\n${r.serial.slice(-3000)}\n--- server log (tail) ---\n${r.serverLog.slice(-3000)}`;
}

describe.skipIf(!runnable && !process.env.CI)('network boot from sidereal serve (QEMU, TCG)', () => {
  it('BIOS: SeaBIOS + iPXE ROM boots pxelinux -> menu -> kernel to the marker', async (ctx) => {
    if (!ready) ctx.skip();
    const node: LabNode = { mac: '52:54:00:77:00:10', ip: '10.77.0.10', hostname: 'e2e-bios' };
    const r = await bootFromSidereal(node, 'bios', 0, 'bios');
    expect(r.ok, describeFailure(r)).toBe(true);
    expect(r.markerLine).toContain(`hostname=${node.hostname}`);
    expect(r.markerLine).toContain(`sidereal.hostname=${node.hostname}`);

    const events = r.events ?? [];
    expect(events.filter((e) => e.stage === 'dhcp').length).toBeGreaterThan(0);
    const files = tftpFiles(r);
    expectServed(files, 'pxelinux.0');
    expectServed(files, `pxelinux.cfg/${pxelinuxMacName(node.mac)}`);
    expectServed(files, labKernelName(assets));
    expectServed(files, labInitrdName(assets));
  }, TEST_TIMEOUT_MS);

  it.skipIf(!existsSync(OVMF_CODE) && !process.env.CI)('UEFI: OVMF PXE boots efi64/syslinux.efi -> menu -> kernel to the marker', async (ctx) => {
    if (!ready) ctx.skip();
    const node: LabNode = { mac: '52:54:00:77:00:11', ip: '10.77.0.11', hostname: 'e2e-uefi' };
    const r = await bootFromSidereal(node, 'uefi', 1, 'uefi');
    expect(r.ok, describeFailure(r)).toBe(true);
    expect(r.markerLine).toContain(`hostname=${node.hostname}`);

    const events = r.events ?? [];
    const dhcp = events.filter((e) => e.stage === 'dhcp');
    expect(dhcp.length).toBeGreaterThan(0);
    expect(dhcp.some((e) => e.detail.archCode === 7)).toBe(true);
    const files = tftpFiles(r);
    expectServed(files, 'efi64/syslinux.efi');
    expectServed(files, `pxelinux.cfg/${pxelinuxMacName(node.mac)}`);
    expectServed(files, labKernelName(assets));
    expectServed(files, labInitrdName(assets));
  }, TEST_TIMEOUT_MS);

  it('BIOS, loader ipxe: iPXE fetches its script, kernel and initrd over HTTP (no TFTP)', async (ctx) => {
    if (!ready) ctx.skip();
    const node: LabNode = { mac: '52:54:00:77:00:12', ip: '10.77.0.12', hostname: 'e2e-ipxe', loader: 'ipxe' };
    const r = await bootFromSidereal(node, 'bios', 2, 'ipxe');
    expect(r.ok, describeFailure(r)).toBe(true);
    expect(r.markerLine).toContain(`hostname=${node.hostname}`);
    const http = httpFiles(r);
    expect(http).toEqual([`boot/${node.mac}.ipxe`, labKernelName(assets), labInitrdName(assets)]);
    expect(tftpFiles(r)).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('BIOS, loader lpxelinux: menu over TFTP, kernel and initrd over HTTP', async (ctx) => {
    if (!ready) ctx.skip();
    const node: LabNode = { mac: '52:54:00:77:00:13', ip: '10.77.0.13', hostname: 'e2e-lpx', loader: 'lpxelinux' };
    const r = await bootFromSidereal(node, 'bios', 3, 'lpxelinux');
    expect(r.ok, describeFailure(r)).toBe(true);
    const files = tftpFiles(r);
    expectServed(files, 'lpxelinux.0');
    expectServed(files, `pxelinux.cfg/${pxelinuxMacName(node.mac)}`);
    const http = httpFiles(r);
    expect(http).toContain(labKernelName(assets));
    expect(http).toContain(labInitrdName(assets));
  }, TEST_TIMEOUT_MS);
});
