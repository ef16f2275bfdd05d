/**
 * The whole diskless boot, end to end: QEMU nodes boot `bookworm-minimal` (built by Sidereal's
 * root builder, cached in /var/cache/sidereal-lab/roots) from `sidereal serve` over NFS, served
 * by nfs-ganesha whose exports Sidereal writes, both in the lab namespace.
 *  - a BIOS node (SeaBIOS + iPXE -> pxelinux) boots the shared root read-only with a RAM
 *    overlay, and at the same time
 *  - a UEFI node (OVMF PXE -> syslinux.efi), the root's maintenance machine, boots it
 *    read-write.
 * Each reaches multi-user, where the root's sidereal-booted unit reports to Sidereal (the end
 * of the boot timeline) and writes /var/lib/sidereal/last-boot: on the shared node that write
 * stays in its RAM; the maintenance node's lands in the root on the server.
 * About 3-5 minutes under TCG (plus a root build, ~2-4 minutes, when the cache is cold).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canCreateNamespaces, destroyAllNamespaces } from '../../lab/netns.js';
import { createLabNetwork, type LabNetwork } from '../../lab/network.js';
import { bootedMarker, startNfsLab, type NfsLab } from '../../lab/nfsboot.js';
import { LAB_ROOT } from '../../lab/nfsroot.js';
import { stopAllTracked } from '../../lab/proc.js';
import { bootNode, haveQemu, OVMF_CODE, type BootResult } from '../../lab/qemu.js';
import { machineEvents, siderealCli, siderealReady } from '../../lab/sidereal.js';

const BOOT_TIMEOUT_MS = 480_000;

const runnable =
  process.getuid?.() === 0 &&
  existsSync('/usr/lib/PXELINUX/pxelinux.0') && existsSync('/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi') && existsSync(OVMF_CODE) &&
  existsSync('/usr/bin/ganesha.nfsd') && existsSync('/usr/sbin/debootstrap') &&
  process.env.SIDEREAL_SKIP_E2E !== '1';

const SHARED = { mac: '52:54:00:77:01:10', ip: '10.77.0.20', hostname: 'shared01' };
const MASTER = { mac: '52:54:00:77:01:11', ip: '10.77.0.21', hostname: 'master01' };

let ready = false;
let net: LabNetwork;
let work = '';
let lab: NfsLab | undefined;

beforeAll(async () => {
  if (!runnable || !(await canCreateNamespaces()) || !(await haveQemu()) || !(await siderealReady())) {
    if (process.env.CI) throw new Error('CI must run the NFS boot: needs root, QEMU, OVMF, pxelinux, syslinux-efi, nfs-ganesha, debootstrap and the built CLI');
    return;
  }
  net = await createLabNetwork({ taps: 2 });
  work = await mkdtemp(path.join(tmpdir(), 'sidereal-nfsboot-'));
  lab = await startNfsLab(net, work, [SHARED, { ...MASTER, mode: 'maintenance' }], (l) => process.stderr.write(`${l}\n`));
  ready = true;
}, 3_600_000);

afterAll(async () => {
  await lab?.stop();
  await stopAllTracked();
  await net?.destroy();
  await destroyAllNamespaces();
  if (work) await rm(work, { recursive: true, force: true });
});

function failure(r: BootResult, name: string): string {
  const log = existsSync(path.join(work, 'sidereal.log')) ? readFileSync(path.join(work, 'sidereal.log'), 'utf8') : '';
  return `${name}: ${r.error ?? ''}\n--- serial (tail) ---\n${r.serial.slice(-4000)}\n--- sidereal log (tail) ---\n${log.slice(-3000)}`;
}

describe.skipIf(!runnable && !process.env.CI)('diskless boot over NFS (QEMU, TCG, nfs-ganesha)', () => {
  it('a shared BIOS node (RAM overlay) and the UEFI maintenance node (read-write) boot the root side by side', async (ctx) => {
    if (!ready) ctx.skip();
    const { tree, config } = lab!;
    const lastBoot = path.join(tree, 'var/lib/sidereal/last-boot');
    rmSync(lastBoot, { force: true }); // an earlier run's maintenance node wrote it

    const marker = bootedMarker;
    const [shared, master] = await Promise.all([
      bootNode({ ns: net.ns, tap: net.taps[0]!, mac: SHARED.mac, firmware: 'bios', marker: marker(SHARED.hostname), timeoutMs: BOOT_TIMEOUT_MS, serialLog: path.join(work, 'serial-shared.log'), memoryMb: 1024 }),
      bootNode({ ns: net.ns, tap: net.taps[1]!, mac: MASTER.mac, firmware: 'uefi', uefiRom: 'none', marker: marker(MASTER.hostname), timeoutMs: BOOT_TIMEOUT_MS, serialLog: path.join(work, 'serial-master.log'), memoryMb: 1024 }),
    ]);
    expect(shared.ok, failure(shared, 'shared')).toBe(true);
    expect(master.ok, failure(master, 'master')).toBe(true);
    expect(shared.markerLine).toContain(`ip=${SHARED.ip}`);

    // The maintenance node's write is in the root on the server; the shared node's stayed in its RAM.
    expect(readFileSync(lastBoot, 'utf8').trim()).toBe(`${MASTER.hostname} ${MASTER.ip} ${MASTER.mac}`);

    // Each timeline runs DHCP -> files -> kernel -> NFS root -> booted.
    for (const node of [SHARED, MASTER]) {
      const events = await machineEvents(config, node.mac);
      const stages = events.map((e) => e.stage);
      for (const s of ['dhcp', 'kernel', 'nfs', 'booted']) expect(stages, `${node.hostname}: ${stages.join(',')}`).toContain(s);
      // What / is on each: the shared node's RAM overlay, the maintenance node's NFS root itself.
      expect(events.find((e) => e.stage === 'booted')!.detail).toMatchObject({ hostname: node.hostname, ip: node.ip, rootfs: node === SHARED ? 'overlayfs' : 'nfs' });
      const at = (s: string) => events.find((e) => e.stage === s)!.at;
      expect(at('dhcp')).toBeLessThan(at('kernel'));
      expect(at('kernel')).toBeLessThan(at('nfs'));
      expect(at('nfs')).toBeLessThan(at('booted'));
    }
    const timeline = await siderealCli(config, ['machine', 'events', SHARED.mac]);
    process.stderr.write(`${timeline}\n`);
    expect(timeline).toMatch(/stages: dhcp \+0\.00 s, files \+[\d.]+ s, kernel \+[\d.]+ s, nfs \+[\d.]+ s, booted \+[\d.]+ s/);

    // What Sidereal exported: the live generation ro to the subnet, rw to the maintenance node only.
    const exported = readFileSync(lab!.ganesha.exportsFile, 'utf8');
    expect(exported).toContain(`Path = "${tree}"`);
    expect(exported).toContain(`CLIENT { Clients = ${MASTER.ip}/32; Access_Type = RW; }`);
    expect(exported).toContain('CLIENT { Clients = 10.77.0.0/24; Access_Type = RO; }');
  }, BOOT_TIMEOUT_MS + 120_000);

  it('a rebuild under a running node: it keeps its generation, exported and readable; its next boot gets the new one', async (ctx) => {
    if (!ready) ctx.skip();
    const { config } = lab!;
    const exportsFile = lab!.ganesha.exportsFile;
    const old = (await siderealJson(config, ['machine', 'show', SHARED.mac])).running as { nfsPath: string };
    const running = await bootNode({
      ns: net.ns, tap: net.taps[0]!, mac: SHARED.mac, firmware: 'bios', marker: bootedMarker(SHARED.hostname),
      timeoutMs: BOOT_TIMEOUT_MS, serialLog: path.join(work, 'serial-rebuild-1.log'), memoryMb: 1024, keep: true,
    });
    try {
      expect(running.ok, failure(running, 'shared, first boot')).toBe(true);
      const genA = old.nfsPath;

      // The rebuild, with the node up: a new generation goes live; the node's stays.
      await siderealCli(config, ['root', 'build', LAB_ROOT], 40 * 60_000);
      const builtAt = Date.now();
      const genB = lab!.treeNow();
      expect(genB).not.toBe(genA);
      await waitFor(() => readFileSync(exportsFile, 'utf8').includes(`Path = "${genB}"`), 20_000, 'the new generation exported');
      expect(readFileSync(exportsFile, 'utf8')).toContain(`Path = "${genA}"`);
      expect(existsSync(genA)).toBe(true); // not pruned: a machine runs it

      // The node's heartbeat after the rebuild: still on its generation, reading it fine.
      await waitFor(async () => {
        const r = (await siderealJson(config, ['machine', 'show', SHARED.mac])).running as { at: number; nfsPath: string } | null;
        return !!r && r.at > builtAt && r.nfsPath === genA;
      }, 90_000, 'a heartbeat from the node after the rebuild');
      expect(readFileSync(path.join(work, 'sidereal.log'), 'utf8')).not.toMatch(/"nfs":"error"/);
    } finally {
      await running.stop?.();
    }

    // Power-cycled: the menu now names the new generation. (The old one stays exported: the
    // maintenance node of the first test last booted it. test/integration/nfs-exports.test.ts
    // shows a generation unexported once no machine's last boot used it.)
    const again = await bootNode({
      ns: net.ns, tap: net.taps[0]!, mac: SHARED.mac, firmware: 'bios', marker: bootedMarker(SHARED.hostname),
      timeoutMs: BOOT_TIMEOUT_MS, serialLog: path.join(work, 'serial-rebuild-2.log'), memoryMb: 1024,
    });
    expect(again.ok, failure(again, 'shared, second boot')).toBe(true);
    const genB = lab!.treeNow();
    const booted = (await machineEvents(config, SHARED.mac)).filter((e) => e.stage === 'booted').pop()!;
    expect(String(booted.detail.root)).toContain(`:${genB}:`);
    const now = (await siderealJson(config, ['machine', 'show', SHARED.mac])).running as { nfsPath: string };
    expect(now.nfsPath).toBe(genB);
    expect(readFileSync(exportsFile, 'utf8')).toContain(`Path = "${genB}"`);
  }, 2 * BOOT_TIMEOUT_MS + 2_400_000);
});

async function siderealJson(config: string, args: string[]): Promise<Record<string, unknown>> {
  return JSON.parse(await siderealCli(config, ['--json', ...args])) as Record<string, unknown>;
}

async function waitFor(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`waited ${ms} ms for ${what}`);
}
