/**
 * The NFS-root lab: `sidereal serve` and nfs-ganesha in the lab namespace, the lab root
 * (bookworm-minimal, built or reused by lab/nfsroot.ts) registered and exported, machines added.
 * Shared by `npm run lab`, the e2e NFS boot test and bench/boot.ts so all three run the same.
 */
import { realpathSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { installBootloaders } from '../server/boot/bootloaders.js';
import { startGanesha, type Ganesha } from './ganesha.js';
import type { LabNetwork } from './network.js';
import { ensureLabRoot, LAB_ROOT, LAB_ROOTS_DIR, type LabRoot } from './nfsroot.js';
import type { RunningServer } from './server-process.js';
import { siderealCli, startSidereal, writeLabConfig } from './sidereal.js';

export interface NfsLabMachine {
  mac: string;
  ip: string;
  hostname: string;
  mode?: 'root' | 'maintenance';
  kernelArgs?: string;
}

export interface NfsLab {
  config: string;
  tftpRoot: string;
  root: LabRoot;
  /** The tree nodes mount: <LAB_ROOTS_DIR>/bookworm-minimal/<generation>, at start. */
  tree: string;
  /** The live tree now (after a rebuild, the new one). */
  treeNow(): string;
  ganesha: Ganesha;
  server: RunningServer;
  stop(): Promise<void>;
}

/** What the root's sidereal-booted unit prints on the console once the node is up and has reported. */
export function bootedMarker(hostname: string): RegExp {
  return new RegExp(`SIDEREAL-BOOTED host=${hostname} .*report=ok`);
}

export async function startNfsLab(net: LabNetwork, workDir: string, machines: NfsLabMachine[], say: (line: string) => void = () => {}): Promise<NfsLab> {
  const ganeshaDir = path.join(workDir, 'ganesha');
  await mkdir(ganeshaDir, { recursive: true });
  const cfg = await writeLabConfig({
    dir: workDir, iface: net.bridge, serverIp: net.serverIp, subnet: net.subnet, rootsDir: LAB_ROOTS_DIR,
    ganesha: { exportsFile: path.join(ganeshaDir, 'sidereal-exports.conf'), pidFile: path.join(ganeshaDir, 'ganesha.pid') },
  });
  await installBootloaders(cfg.tftpRoot);
  const root = await ensureLabRoot(cfg.configFile, cfg.tftpRoot, say);
  say(`root ${LAB_ROOT} ${root.generation} (${root.built ? `built in ${root.seconds.toFixed(0)} s` : 'reused from the cache'})`);
  const ganesha = await startGanesha(net.ns, ganeshaDir);
  try {
    for (const m of machines) {
      await siderealCli(cfg.configFile, ['machine', 'add', m.mac, '--hostname', m.hostname, '--ip', m.ip, '--root', LAB_ROOT,
        ...(m.mode ? ['--mode', m.mode] : []), ...(m.kernelArgs ? ['--kernel-args', m.kernelArgs] : [])]);
    }
    const server = await startSidereal(net.ns, cfg.configFile, path.join(workDir, 'sidereal.log'));
    return {
      config: cfg.configFile, tftpRoot: cfg.tftpRoot, root, tree: path.join(LAB_ROOTS_DIR, LAB_ROOT, root.generation), ganesha, server,
      treeNow: () => realpathSync(path.join(LAB_ROOTS_DIR, LAB_ROOT, 'current')),
      async stop() {
        await server.stop();
        await ganesha.stop();
      },
    };
  } catch (e) {
    await ganesha.stop();
    throw e;
  }
}
