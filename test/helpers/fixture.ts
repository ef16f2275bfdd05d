/** A config and an inventory in a temp dir, for unit tests of the boot decision and the servers. */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, type SiderealConfig } from '../../server/config/config.js';
import { Inventory } from '../../server/inventory/index.js';
import { networkPolicy } from '../../server/daemon/network.js';

export interface Fixture {
  dir: string;
  config: SiderealConfig;
  inv: Inventory;
  cleanup(): void;
}

export function baseConfigDoc(dir: string): Record<string, unknown> {
  return {
    interface: 'br0',
    serverAddress: '10.77.0.1',
    dataDir: join(dir, 'data'),
    dhcp: {
      subnet: '10.77.0.0/24', router: '10.77.0.1', dns: ['10.77.0.1'], domain: 'lab.sidereal', leaseTime: 3600,
      pool: { start: '10.77.0.100', end: '10.77.0.150' }, unknownClients: 'pool',
    },
    tftp: { root: join(dir, 'tftp') },
    http: { port: 8080 },
  };
}

export function makeFixture(edit?: (doc: Record<string, unknown>) => void): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-test-'));
  mkdirSync(join(dir, 'tftp', 'efi64'), { recursive: true });
  const doc = baseConfigDoc(dir);
  edit?.(doc);
  const config = validateConfig(doc);
  const inv = Inventory.open(config.dataDir, networkPolicy(config));
  return { dir, config, inv, cleanup: () => { inv.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** A root named `lab` with its kernel and initrd published in the TFTP root. */
export function addLabRoot(f: Fixture, kernelArgs = 'console=ttyS0'): void {
  writeFileSync(join(f.config.tftp.root, 'vmlinuz-6.1.0@lab'), 'kernel-bytes');
  writeFileSync(join(f.config.tftp.root, 'initrd.img-6.1.0@lab'), Buffer.alloc(100_000, 7));
  f.inv.roots.put({ name: 'lab', arch: 'amd64', kernel: 'vmlinuz-6.1.0@lab', initrd: 'initrd.img-6.1.0@lab', nfsPath: '/srv/sidereal/roots/lab', kernelArgs });
}
