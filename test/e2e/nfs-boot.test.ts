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
      expect(events.find((e) => e.stage === 'booted')!.detail).toMatchObject({ hostname: node.hostname, ip: node.ip });
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
});
