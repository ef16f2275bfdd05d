/**
 * The whole diskless boot, timed: a QEMU node from power-on to its root up over NFS, served by
 * Sidereal (its DHCP, TFTP, per-MAC menu and the ganesha exports it writes) and by the SIDUS way
 * configured by hand (dnsmasq with a static per-MAC pxelinux menu, nfs-ganesha with an EXPORT
 * block written by hand), in the same run, on the same root tree (the lab's bookworm-minimal),
 * alternating servers. Times come from the node's serial console, the same way for both:
 *   kernel   QEMU start -> "Linux version" (DHCP, bootloader, kernel and initrd fetched)
 *   root     -> systemd reaches initrd-switch-root.target (the NFS root and its overlay are up)
 *   booted   -> the getty's login prompt on the serial console
 *
 *   npm run bench:nfsboot -- [--firmware bios,uefi] [--runs N] [--timeout S]
 *
 * Needs root; everything runs in a lab namespace and is removed. Results:
 * bench/results/nfs-boot-<date>.json, and a table with the ratios sidereal/by-hand.
 */
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installBootloaders } from '../server/boot/bootloaders.js';
import { startDnsmasq } from '../lab/dnsmasq.js';
import { startGanesha } from '../lab/ganesha.js';
import { destroyAllNamespaces } from '../lab/netns.js';
import { createLabNetwork, type LabNetwork } from '../lab/network.js';
import { startNfsLab } from '../lab/nfsboot.js';
import { LAB_ROOT } from '../lab/nfsroot.js';
import { stopAllTracked } from '../lab/proc.js';
import { bootNode, type Firmware } from '../lab/qemu.js';
import { repoRoot } from '../lab/sidereal.js';
import { writeStaticMenu } from '../lab/tftp.js';
import { DEFAULT_NFS_OPTIONS } from '../server/config/config.js';
import { median } from './boot.js';

type Server = 'sidereal' | 'by-hand';
type Stage = 'kernel' | 'root' | 'booted';
interface Sample { server: Server; firmware: Firmware; run: number; ok: boolean; stages: Partial<Record<Stage, number>>; error?: string }

// systemd.show_status=true: systemd prints its status lines (the `root` stage) on every boot, not only on slow ones.
const NODE = { mac: '52:54:00:77:02:10', ip: '10.77.0.30', hostname: 'bench01', kernelArgs: 'systemd.show_status=true' };
// `booted`: the login prompt on the serial console, which both reach (the hand-made menu has no
// sidereal.url, so the root's sidereal-booted unit does not run there; systemd's own status
// lines are shown or not depending on how slow the boot looks to it).
const LOGIN = /bench01 login:/;
const STAGES: Array<[Stage, RegExp]> = [['kernel', /Linux version \d/], ['root', /initrd-switch-root\.target|Switching root/]];

const { values } = parseArgs({
  options: {
    firmware: { type: 'string', default: 'bios,uefi' },
    runs: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '480' },
    out: { type: 'string' },
  },
});
if (process.getuid?.() !== 0) {
  console.error('nfs-boot: needs root (network namespace, taps, QEMU, ganesha)');
  process.exit(2);
}
const firmwares = values.firmware!.split(',') as Firmware[];
const runs = Number(values.runs);
const timeoutMs = Number(values.timeout) * 1000;
const say = (m: string) => process.stdout.write(`${m}\n`);

/** One boot with QEMU, stage times from its console. */
async function timedBoot(net: LabNetwork, firmware: Firmware, serialLog: string): Promise<Omit<Sample, 'server' | 'firmware' | 'run'>> {
  const stages: Partial<Record<Stage, number>> = {};
  const t0 = process.hrtime.bigint();
  const r = await bootNode({
    ns: net.ns, tap: net.taps[0]!, mac: NODE.mac, firmware, uefiRom: 'none', marker: LOGIN, markerIsPrompt: true, timeoutMs, serialLog, memoryMb: 1024,
    onLine: (line) => {
      const t = Number(process.hrtime.bigint() - t0) / 1e9;
      for (const [stage, re] of STAGES) if (stages[stage] === undefined && re.test(line)) stages[stage] = Math.round(t * 100) / 100;
    },
  });
  if (r.ok) stages.booted = Math.round(r.seconds * 100) / 100;
  return { ok: r.ok, stages, ...(r.error ? { error: r.error } : {}) };
}

/** The SIDUS way by hand: dnsmasq, a static menu, ganesha with a hand-written export of the same tree. */
async function byHand(net: LabNetwork, dir: string, tree: string, firmware: Firmware): Promise<Omit<Sample, 'server' | 'firmware' | 'run'>> {
  const tftpRoot = path.join(dir, 'tftp');
  await installBootloaders(tftpRoot);
  const boot = await readdir(path.join(tree, 'boot'));
  const kver = boot.find((f) => f.startsWith('vmlinuz-'))!.slice('vmlinuz-'.length);
  const files = { kernel: `vmlinuz-${kver}@${LAB_ROOT}`, initrd: `initrd.img-${kver}@${LAB_ROOT}` };
  await copyFile(path.join(tree, 'boot', `vmlinuz-${kver}`), path.join(tftpRoot, files.kernel));
  await copyFile(path.join(tree, 'boot', `initrd.img-${kver}`), path.join(tftpRoot, files.initrd));
  // dracut writes the initrd 0600 and dnsmasq's TFTP (user nobody) refuses it: as SIDUS says, make it readable.
  await chmod(path.join(tftpRoot, files.initrd), 0o644);
  await writeStaticMenu(tftpRoot, NODE.mac, files, NODE.hostname,
    `console=tty0 console=ttyS0,115200 ip=dhcp root=nfs:${net.serverIp}:${tree}:${DEFAULT_NFS_OPTIONS} ro sidereal.overlay=tmpfs ${NODE.kernelArgs}`);
  const gdir = path.join(dir, 'ganesha');
  await mkdir(gdir, { recursive: true });
  const exportsFile = path.join(gdir, 'exports.conf');
  await writeFile(exportsFile, `EXPORT {
  Export_Id = 1; Path = "${tree}"; Pseudo = "${tree}";
  Protocols = 3, 4; Transports = TCP; SecType = sys; Squash = No_Root_Squash; Access_Type = None;
  FSAL { Name = VFS; }
  CLIENT { Clients = ${net.subnet}; Access_Type = RO; }
}
`);
  const ganesha = await startGanesha(net.ns, gdir, exportsFile);
  const [a, b, c] = net.serverIp.split('.');
  const dnsmasq = await startDnsmasq({ ns: net.ns, iface: net.bridge, tftpRoot, workDir: dir, rangeStart: `${a}.${b}.${c}.100`, rangeEnd: `${a}.${b}.${c}.150`, hosts: [NODE] });
  try {
    return await timedBoot(net, firmware, path.join(dir, 'serial.log'));
  } finally {
    await dnsmasq.stop();
    await ganesha.stop();
  }
}

const work = await mkdtemp(path.join(tmpdir(), 'sidereal-nfsbench-'));
let net: LabNetwork | undefined;
// Ctrl-C: stop what was started (by PID), remove the namespace and the work dir, then exit.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void (async () => {
      await stopAllTracked().catch(() => undefined);
      await net?.destroy().catch(() => undefined);
      await destroyAllNamespaces().catch(() => undefined);
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
      process.exit(130);
    })();
  });
}
const samples: Sample[] = [];
let tree = '';
try {
  net = await createLabNetwork({ taps: 1 });
  for (let run = 1; run <= runs; run++) {
    for (const firmware of firmwares) {
      for (const server of ['sidereal', 'by-hand'] as Server[]) {
        const dir = path.join(work, `${server}-${firmware}-${run}`);
        await mkdir(dir, { recursive: true });
        let s: Omit<Sample, 'server' | 'firmware' | 'run'>;
        try {
          if (server === 'sidereal') {
            const lab = await startNfsLab(net, dir, [NODE], say);
            tree = lab.tree;
            try {
              s = await timedBoot(net, firmware, path.join(dir, 'serial.log'));
            } finally {
              await lab.stop();
            }
          } else {
            if (!tree) throw new Error('the Sidereal run goes first: it builds or finds the root');
            s = await byHand(net, dir, tree, firmware);
          }
        } catch (e) {
          s = { ok: false, stages: {}, error: (e as Error).message };
        }
        samples.push({ server, firmware, run, ...s });
        say(`${server.padEnd(8)} ${firmware.padEnd(4)} run ${run}: ${s.ok ? (['kernel', 'root', 'booted'] as Stage[]).map((k) => `${k} ${s.stages[k]?.toFixed(1) ?? '-'} s`).join(', ') : `FAILED: ${s.error}`}`);
      }
    }
  }
} finally {
  await stopAllTracked();
  await net?.destroy();
  await destroyAllNamespaces();
  await rm(work, { recursive: true, force: true });
}

const med = (server: Server, firmware: Firmware, stage: Stage) =>
  median(samples.filter((x) => x.ok && x.server === server && x.firmware === firmware && x.stages[stage] !== undefined).map((x) => x.stages[stage]!));
const rows = firmwares.flatMap((f) => (['kernel', 'root', 'booted'] as Stage[]).map((stage) => {
  const s = med('sidereal', f, stage);
  const h = med('by-hand', f, stage);
  return { firmware: f, stage, sidereal: s, byHand: h, ratio: s && h ? Math.round((s / h) * 100) / 100 : null };
}));
say('\nseconds from power-on (median of the runs), same root, same run');
say('firmware  stage    sidereal  by hand (dnsmasq + ganesha)  ratio');
for (const r of rows) say(`${r.firmware.padEnd(8)}  ${r.stage.padEnd(7)}  ${String(r.sidereal ?? '-').padStart(8)}  ${String(r.byHand ?? '-').padStart(27)}  ${r.ratio ?? '-'}`);
const out = values.out ?? path.join(repoRoot(), 'bench', 'results', `nfs-boot-${new Date().toISOString().slice(0, 10)}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, JSON.stringify({ date: new Date().toISOString(), host: { cpus: cpus().length, accel: 'tcg' }, runs, firmwares, samples, rows }, null, 2) + '\n');
say(`results: ${out}`);
process.exit(samples.every((s) => s.ok) ? 0 : 1);
