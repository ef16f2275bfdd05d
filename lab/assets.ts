/**
 * What a lab VM boots: Debian's own amd64 kernel (fetched as a .deb and
 * unpacked in a cache, never installed on the host) and a tiny "marker"
 * initrd built from busybox-static whose /init prints one line to the console
 * and powers off:
 *
 *   SIDEREAL-MARKER ok hostname=<sidereal.hostname=...> cmdline=<proc/cmdline>
 *
 * Both are cached under `cacheDir` with a stamp file; a second call reuses
 * them without touching apt.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export interface LabAssets {
  /** Absolute path of the kernel image (bzImage). */
  kernel: string;
  /** Absolute path of the marker initrd (gzip'd newc cpio). */
  initrd: string;
  /** e.g. `6.1.0-56-amd64`. */
  kernelVersion: string;
}

export const MARKER = 'SIDEREAL-MARKER ok';
/** Bump when the initrd's content or the cache layout changes. */
const ASSETS_FORMAT = 2;
const BUSYBOX = '/bin/busybox';

export function defaultCacheDir(): string {
  return process.env.SIDEREAL_LAB_CACHE ?? '/var/cache/sidereal-lab';
}

interface Stamp {
  format: number;
  kernelVersion: string;
  kernel: string;
  initrd: string;
}

export async function prepareLabAssets(cacheDir: string = defaultCacheDir()): Promise<LabAssets> {
  const dir = path.resolve(cacheDir);
  await mkdir(dir, { recursive: true });
  const stampFile = path.join(dir, 'assets.json');
  try {
    const stamp = JSON.parse(await readFile(stampFile, 'utf8')) as Stamp;
    if (stamp.format === ASSETS_FORMAT && existsSync(stamp.kernel) && existsSync(stamp.initrd)) {
      return { kernel: stamp.kernel, initrd: stamp.initrd, kernelVersion: stamp.kernelVersion };
    }
  } catch {
    /* no usable stamp: build */
  }
  const kernelVersion = await debianKernelVersion();
  const kernel = await fetchKernel(dir, kernelVersion);
  const initrd = path.join(dir, 'marker-initrd.img');
  await writeFile(initrd + '.tmp', await buildMarkerInitrd());
  await rename(initrd + '.tmp', initrd);
  const stamp: Stamp = { format: ASSETS_FORMAT, kernelVersion, kernel, initrd };
  await writeFile(stampFile, JSON.stringify(stamp, null, 2) + '\n');
  return { kernel, initrd, kernelVersion };
}

/** The kernel ABI the `linux-image-amd64` metapackage depends on, e.g. `6.1.0-56-amd64`. */
export async function debianKernelVersion(): Promise<string> {
  const pick = (text: string): string | undefined => {
    const m = /linux-image-(\d[^\s,|()<>]*-amd64)\b/.exec(text);
    return m?.[1];
  };
  let r = await execa('apt-cache', ['depends', 'linux-image-amd64'], { reject: false });
  let v = r.exitCode === 0 ? pick(r.stdout) : undefined;
  if (!v) {
    r = await execa('apt-cache', ['show', 'linux-image-amd64'], { reject: false });
    const dep = /^Depends:(.*)$/m.exec(r.stdout ?? '');
    v = dep ? pick(dep[1] ?? '') : undefined;
  }
  if (!v) {
    await aptUpdate();
    r = await execa('apt-cache', ['depends', 'linux-image-amd64'], { reject: false });
    v = r.exitCode === 0 ? pick(r.stdout) : undefined;
  }
  if (!v) throw new Error('cannot find which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64); run apt-get update');
  return v;
}

async function aptUpdate(): Promise<void> {
  await execa('apt-get', ['update', '-qq'], { reject: false, timeout: 300_000 });
}

/** Download linux-image-<ver> into the cache and unpack only its boot/vmlinuz-*. */
async function fetchKernel(dir: string, ver: string): Promise<string> {
  const kdir = path.join(dir, `linux-${ver}`);
  const target = path.join(kdir, `vmlinuz-${ver}`);
  if (existsSync(target)) return target;
  const pkg = `linux-image-${ver}`;
  const dl = path.join(dir, 'download');
  await rm(dl, { recursive: true, force: true });
  await mkdir(dl, { recursive: true });
  // apt-get download writes into the cwd; as root it warns that _apt cannot write there: harmless.
  let r = await execa('apt-get', ['download', pkg], { cwd: dl, reject: false, timeout: 600_000 });
  if (r.exitCode !== 0) {
    await aptUpdate();
    r = await execa('apt-get', ['download', pkg], { cwd: dl, reject: false, timeout: 600_000 });
  }
  if (r.exitCode !== 0) throw new Error(`apt-get download ${pkg} failed: ${r.stderr}`);
  const deb = (await readdir(dl)).find((f) => f.startsWith(pkg) && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dl}`);
  const x = path.join(dl, 'x');
  await mkdir(x);
  // Only boot/ is needed: skip the ~400 MB of modules `dpkg-deb -x` would write.
  await execa('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/vmlinuz-*"', 'sh', path.join(dl, deb), x]);
  const boot = path.join(x, 'boot');
  const vmlinuz = (await readdir(boot)).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`${deb} holds no boot/vmlinuz-*`);
  await mkdir(kdir, { recursive: true });
  await rename(path.join(boot, vmlinuz), target);
  await rm(dl, { recursive: true, force: true });
  return target;
}

/** The marker /init (busybox sh). */
export function markerInitScript(): string {
  return `#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
# Keep kernel messages from interleaving with the marker line.
echo 1 > /proc/sys/kernel/printk
cmdline=$(cat /proc/cmdline)
hostname=
for arg in $cmdline; do
  case "$arg" in sidereal.hostname=*) hostname="\${arg#sidereal.hostname=}" ;; esac
done
echo
echo "${MARKER} hostname=$hostname cmdline=$cmdline"
sync
poweroff -f
sleep 5
echo o > /proc/sysrq-trigger
`;
}

/** Build the gzip'd newc cpio: /init, /bin/busybox and its applet links, /dev/console. */
export async function buildMarkerInitrd(): Promise<Buffer> {
  if (!existsSync(BUSYBOX)) {
    throw new Error(`${BUSYBOX} not found: apt-get install busybox-static`);
  }
  const file = await execa('file', ['-b', BUSYBOX], { reject: false });
  if (file.exitCode === 0 && /dynamically linked/.test(file.stdout)) {
    throw new Error(`${BUSYBOX} is dynamically linked: apt-get install busybox-static`);
  }
  const stage = await mkdtemp('/tmp/sidereal-initrd-');
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp']) await mkdir(path.join(stage, d));
    await execa('cp', [BUSYBOX, path.join(stage, 'bin/busybox')]);
    for (const applet of ['sh', 'mount', 'mkdir', 'cat', 'echo', 'poweroff', 'sync', 'sleep']) {
      await symlink('busybox', path.join(stage, 'bin', applet));
    }
    await writeFile(path.join(stage, 'init'), markerInitScript());
    await chmod(path.join(stage, 'init'), 0o755);
    // /dev/console lets the kernel hand /init a console before devtmpfs is mounted (needs root).
    await execa('mknod', ['-m', '600', path.join(stage, 'dev/console'), 'c', '5', '1'], { reject: false });
    const list = await execa('find', ['.', '-mindepth', '1'], { cwd: stage });
    const cpio = await execa('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], {
      cwd: stage,
      input: list.stdout.split('\n').sort().join('\n') + '\n',
      encoding: 'buffer',
    });
    return gzipSync(Buffer.from(cpio.stdout as Uint8Array), { level: 9 });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
