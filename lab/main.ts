/**
 * `npm run lab`: boot one virtual node from Sidereal, end to end, on this
 * machine. In an isolated network namespace it runs `sidereal serve` and
 * nfs-ganesha, builds (or reuses) the bookworm-minimal root with Sidereal's
 * root builder, boots a QEMU node (SeaBIOS + iPXE by default, `--firmware
 * uefi` for OVMF's own PXE) to that root over NFS with its RAM overlay, waits
 * until the node reports itself up, prints its boot timeline, and removes
 * everything (also on Ctrl-C). `--root marker`: the quick boot of a Debian
 * kernel and a marker initrd instead. `--keep` leaves the lab up for poking.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, prepareLabAssets } from './assets.js';
import { bootAgainst, DEFAULT_NODE, type LabNode } from './bootrun.js';
import type { RunningServer } from './dnsmasq.js';
import { destroyAllNamespaces } from './netns.js';
import { createLabNetwork, type LabNetwork } from './network.js';
import { stopAllTracked } from './proc.js';
import { bootNode, OVMF_CODE, OVMF_VARS, type Firmware } from './qemu.js';
import { bootedMarker, startNfsLab, type NfsLab } from './nfsboot.js';
import { machineTimeline, siderealBin, siderealReady } from './sidereal.js';

const USAGE = `usage: npm run lab -- [--root nfs|marker] [--firmware bios|uefi] [--uefi-rom none|ipxe] [--keep] [--verbose]
                      [--mac MAC] [--hostname NAME] [--ip A.B.C.D] [--timeout S] [--cache DIR] [--pcap FILE]

Boots a QEMU node from 'sidereal serve' inside a private network namespace
(10.77.0.0/24, server 10.77.0.1) and prints its boot timeline. Needs root.
--root nfs (default): the bookworm-minimal root over NFS (nfs-ganesha), built
by Sidereal the first time (minutes) and kept in /var/cache/sidereal-lab/roots.
--root marker: a Debian kernel and a marker initrd (seconds, no NFS).
Kernel cache: --cache, else $SIDEREAL_LAB_CACHE, else /var/cache/sidereal-lab.`;

interface Requirement {
  what: string;
  ok: () => boolean | Promise<boolean>;
  pkg: string;
}

function onPath(cmd: string): () => Promise<boolean> {
  return async () => (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0;
}

/** Every missing piece, each with the Debian package that provides it. */
export async function checkHost(firmware: Firmware, nfs = false): Promise<string[]> {
  const reqs: Requirement[] = [
    { what: 'qemu-system-x86_64', ok: onPath('qemu-system-x86_64'), pkg: 'qemu-system-x86' },
    { what: '/usr/lib/PXELINUX/pxelinux.0', ok: () => existsSync('/usr/lib/PXELINUX/pxelinux.0'), pkg: 'pxelinux' },
    { what: '/usr/lib/syslinux/modules/bios/ldlinux.c32', ok: () => existsSync('/usr/lib/syslinux/modules/bios/ldlinux.c32'), pkg: 'syslinux-common' },
    { what: '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi', ok: () => existsSync('/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi'), pkg: 'syslinux-efi' },
    { what: '/bin/busybox', ok: () => existsSync('/bin/busybox'), pkg: 'busybox-static' },
    { what: 'cpio', ok: onPath('cpio'), pkg: 'cpio' },
    { what: 'ip', ok: onPath('ip'), pkg: 'iproute2' },
    { what: 'apt-get download / dpkg-deb', ok: onPath('dpkg-deb'), pkg: 'dpkg' },
  ];
  if (firmware === 'bios') {
    reqs.push({ what: 'QEMU iPXE option ROM /usr/lib/ipxe/qemu/pxe-virtio.rom', ok: () => existsSync('/usr/lib/ipxe/qemu/pxe-virtio.rom'), pkg: 'ipxe-qemu' });
  } else {
    reqs.push({ what: OVMF_CODE, ok: () => existsSync(OVMF_CODE) && existsSync(OVMF_VARS), pkg: 'ovmf' });
  }
  if (nfs) {
    reqs.push(
      { what: 'ganesha.nfsd', ok: onPath('ganesha.nfsd'), pkg: 'nfs-ganesha nfs-ganesha-vfs' },
      { what: 'rpcbind', ok: onPath('rpcbind'), pkg: 'rpcbind' },
      { what: 'mmdebstrap or debootstrap', ok: async () => (await onPath('mmdebstrap')()) || (await onPath('debootstrap')()), pkg: 'mmdebstrap' },
    );
  }
  const missing: string[] = [];
  for (const r of reqs) if (!(await r.ok())) missing.push(`${r.what} (apt-get install ${r.pkg})`);
  return missing;
}

export async function labMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      root: { type: 'string', default: 'nfs' },
      firmware: { type: 'string', default: 'bios' },
      'uefi-rom': { type: 'string', default: 'none' },
      keep: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      mac: { type: 'string', default: DEFAULT_NODE.mac },
      hostname: { type: 'string', default: DEFAULT_NODE.hostname },
      ip: { type: 'string', default: DEFAULT_NODE.ip },
      timeout: { type: 'string', default: '240' },
      cache: { type: 'string' },
      pcap: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const say = (m: string) => process.stdout.write(m + '\n');
  if (values.help) {
    say(USAGE);
    return 0;
  }
  const firmware = values.firmware as Firmware;
  if (firmware !== 'bios' && firmware !== 'uefi') {
    process.stderr.write(`--firmware must be bios or uefi\n${USAGE}\n`);
    return 2;
  }
  if (values.root !== 'nfs' && values.root !== 'marker') {
    process.stderr.write(`--root must be nfs or marker\n${USAGE}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('the lab needs root: it creates a network namespace, a bridge and tap devices (try: sudo npm run lab)\n');
    return 1;
  }
  const missing = await checkHost(firmware, values.root === 'nfs');
  if (missing.length) {
    process.stderr.write(`missing on this host:\n${missing.map((m) => `  ${m}`).join('\n')}\n`);
    return 1;
  }
  if (!(await siderealReady())) {
    process.stderr.write(`${siderealBin()} --help fails: build Sidereal first (npm ci && npm run build)\n`);
    return 1;
  }
  const node: LabNode = { mac: values.mac.toLowerCase(), hostname: values.hostname, ip: values.ip };

  let net: LabNetwork | undefined;
  let work: string | undefined;
  let server: RunningServer | undefined;
  let nfs: NfsLab | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      await server?.stop();
      await nfs?.stop();
      await stopAllTracked();
      await net?.destroy();
      await destroyAllNamespaces();
      if (work) await rm(work, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopping the lab\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    net = await createLabNetwork({ taps: 1 });
    work = await mkdtemp(path.join(tmpdir(), 'sidereal-lab-'));
    say(`namespace ${net.ns}: bridge ${net.bridge} ${net.serverIp}, ${net.taps[0]}; work dir ${work}`);
    if (values.root === 'nfs') {
      nfs = await startNfsLab(net, work, [node], say);
      say(`booting ${node.hostname} (${node.mac}, ${firmware}) to ${nfs.tree} over NFS ...`);
      const b = await bootNode({
        ns: net.ns, tap: net.taps[0]!, mac: node.mac, firmware, uefiRom: values['uefi-rom'] === 'ipxe' ? 'ipxe' : 'none',
        marker: bootedMarker(node.hostname), timeoutMs: Number(values.timeout) * 1000, memoryMb: 1024,
        serialLog: path.join(work, `serial-${firmware}.log`), onLine: values.verbose ? (l) => say(`  | ${l}`) : undefined,
      });
      say(b.ok ? `up after ${b.seconds.toFixed(2)} s: ${b.markerLine}` : `not up after ${b.seconds.toFixed(2)} s: ${b.error}`);
      say(`\nboot timeline (sidereal machine events ${node.mac}):`);
      say(await machineTimeline(nfs.config, node.mac).catch((e: Error) => `(machine events failed: ${e.message})`));
      if (values.keep) {
        say(`\n--keep: the lab stays up until Ctrl-C (namespace ${net.ns}, config ${nfs.config}).`);
        await new Promise<never>(() => { /* until a signal */ });
      }
      return b.ok ? 0 : 1;
    }
    say(`preparing the kernel and marker initrd (cache ${values.cache ?? defaultCacheDir()})`);
    const assets = await prepareLabAssets(values.cache ?? defaultCacheDir());
    say(`kernel ${assets.kernelVersion}`);
    say(`booting ${node.hostname} (${node.mac}, ${firmware}${firmware === 'uefi' ? `, ${values['uefi-rom'] === 'ipxe' ? 'iPXE ROM' : "OVMF's own PXE"}` : ', SeaBIOS + iPXE'}) from sidereal serve ...`);
    const r = await bootAgainst({
      server: 'sidereal',
      firmware,
      uefiRom: values['uefi-rom'] === 'ipxe' ? 'ipxe' : 'none',
      net,
      assets,
      workDir: work,
      node,
      timeoutMs: Number(values.timeout) * 1000,
      keepServer: values.keep,
      pcap: values.pcap,
      onLine: values.verbose ? (l) => say(`  | ${l}`) : undefined,
    });
    server = r.running;
    if (r.ok) say(`marker after ${r.seconds.toFixed(2)} s: ${r.markerLine}`);
    else {
      say(`no marker after ${r.seconds.toFixed(2)} s: ${r.error}`);
      say(`last serial lines:\n${r.serial.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/\r?\n/).filter((l) => l.trim()).slice(-8).map((l) => `  | ${l.slice(0, 200)}`).join('\n')}`);
      say(values.keep ? `serial log ${r.serialLog}, server log ${path.join(work, 'sidereal.log')}` : '(run with --keep to keep the logs and the lab)');
    }
    if (r.configFile) {
      say(`\nboot timeline (sidereal machine events ${node.mac}):`);
      say(await machineTimeline(r.configFile, node.mac).catch((e: Error) => `(machine events failed: ${e.message})`));
    }
    if (values.keep) {
      say(`\n--keep: the lab stays up until Ctrl-C.`);
      say(`  namespace  ${net.ns}   (ip netns exec ${net.ns} bash)`);
      say(`  config     ${r.configFile}`);
      say(`  server pid ${server?.pid}, log ${server?.logFile}`);
      say(`  boot again: ip netns exec ${net.ns} qemu-system-x86_64 -accel tcg -m 512 -nographic -netdev tap,id=n0,ifname=${net.taps[0]},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=${node.mac} -boot n`);
      await new Promise<never>(() => { /* until a signal */ });
    }
    return r.ok ? 0 : 1;
  } finally {
    if (!values.keep || cleaning) await cleanup();
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  labMain(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    async (e: unknown) => {
      await stopAllTracked();
      await destroyAllNamespaces();
      process.stderr.write(`lab: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
