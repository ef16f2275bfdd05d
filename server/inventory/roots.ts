/** Roots: a shared system image nodes boot (kernel + initrd in the TFTP root, the tree over NFS). */
import type { Db } from './db.js';
import { InventoryError } from './errors.js';
import { checkName, checkKernelArgs, checkBootFileName } from './checks.js';

export type RootArch = 'amd64' | 'i386' | 'arm64';

export interface Root {
  name: string;
  arch: RootArch;
  kernel: string;
  initrd: string;
  nfsPath: string;
  kernelArgs: string;
  createdAt: number;
  updatedAt: number;
}

export type RootInput = Pick<Root, 'name' | 'arch' | 'kernel' | 'initrd' | 'nfsPath'> & { kernelArgs?: string };

interface Row { name: string; arch: RootArch; kernel: string; initrd: string; nfs_path: string; kernel_args: string; created_at: number; updated_at: number }

const toRoot = (r: Row): Root => ({
  name: r.name, arch: r.arch, kernel: r.kernel, initrd: r.initrd, nfsPath: r.nfs_path, kernelArgs: r.kernel_args,
  createdAt: r.created_at, updatedAt: r.updated_at,
});

export class Roots {
  private readonly getStmt;
  constructor(private readonly db: Db) {
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM roots WHERE name = ?');
  }

  get(name: string): Root | undefined {
    const r = this.getStmt.get(name);
    return r ? toRoot(r) : undefined;
  }

  list(): Root[] {
    return (this.db.prepare('SELECT * FROM roots ORDER BY name').all() as Row[]).map(toRoot);
  }

  /** Create the root, or replace its fields when it exists (a rebuild publishes new files). */
  put(input: RootInput): Root {
    const name = checkName('name', input.name);
    if (!['amd64', 'i386', 'arm64'].includes(input.arch)) {
      throw new InventoryError('invalid', 'arch', `${JSON.stringify(input.arch)} must be amd64, i386 or arm64`);
    }
    const kernel = checkBootFileName('kernel', input.kernel);
    const initrd = checkBootFileName('initrd', input.initrd);
    if (!input.nfsPath.startsWith('/') || /[\s\0:]/.test(input.nfsPath)) {
      throw new InventoryError('invalid', 'nfsPath', `${JSON.stringify(input.nfsPath)} must be an absolute path with no spaces or colons`);
    }
    const kernelArgs = checkKernelArgs('kernelArgs', input.kernelArgs ?? '');
    const now = Date.now();
    this.db.prepare(`INSERT INTO roots (name, arch, kernel, initrd, nfs_path, kernel_args, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET arch = excluded.arch, kernel = excluded.kernel, initrd = excluded.initrd,
        nfs_path = excluded.nfs_path, kernel_args = excluded.kernel_args, updated_at = excluded.updated_at`)
      .run(name, input.arch, kernel, initrd, input.nfsPath, kernelArgs, now, now);
    return this.get(name)!;
  }

  remove(name: string): Root {
    return this.db.transaction(() => {
      const cur = this.get(name);
      if (!cur) throw new InventoryError('not_found', 'name', `no root named ${name}`);
      const users = this.db.prepare<[string, string], { n: number }>(
        'SELECT (SELECT count(*) FROM machines WHERE root = ?) + (SELECT count(*) FROM groups WHERE root = ?) AS n').get(name, name)!;
      if (users.n > 0) throw new InventoryError('in_use', 'name', `root ${name} is still assigned to ${users.n} machine(s) or group(s)`);
      this.db.prepare('DELETE FROM roots WHERE name = ?').run(name);
      return cur;
    }).immediate();
  }
}
