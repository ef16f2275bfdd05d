/** Groups: defaults that their machines inherit (machine > group > config defaults). */
import type { Db } from './db.js';
import { InventoryError } from './errors.js';
import { assertMaintenanceRule, type BootDefaults } from './maintenance.js';
import { checkName, checkBootMode, checkLoader, checkKernelArgs, checkBootFileName } from './checks.js';
import type { BootMode, ClientArch, Loader } from '../boot/types.js';

export interface Group {
  name: string;
  root: string | null;
  bootMode: BootMode | null;
  loader: Loader | null;
  kernelArgs: string | null;
  /** Option-93 table overrides for this group's machines. */
  bootFiles: Partial<Record<ClientArch, string>> | null;
  createdAt: number;
  updatedAt: number;
}

export type GroupInput = { name: string } & Partial<Pick<Group, 'root' | 'bootMode' | 'loader' | 'kernelArgs' | 'bootFiles'>>;

interface Row {
  name: string; root: string | null; boot_mode: BootMode | null; loader: Loader | null; kernel_args: string | null;
  boot_files: string | null; created_at: number; updated_at: number;
}

const ARCHES: ClientArch[] = ['bios', 'efi32', 'efi64', 'efi64-http', 'arm64'];

const toGroup = (r: Row): Group => ({
  name: r.name, root: r.root, bootMode: r.boot_mode, loader: r.loader, kernelArgs: r.kernel_args,
  bootFiles: r.boot_files ? JSON.parse(r.boot_files) : null, createdAt: r.created_at, updatedAt: r.updated_at,
});

export class Groups {
  private readonly getStmt;
  constructor(private readonly db: Db, private bootDefaults?: BootDefaults) {
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM groups WHERE name = ?');
  }

  /** The boot defaults changed (a config reload). */
  setBootDefaults(defaults: BootDefaults | undefined): void {
    this.bootDefaults = defaults;
  }

  get(name: string): Group | undefined {
    const r = this.getStmt.get(name);
    return r ? toGroup(r) : undefined;
  }

  list(): Group[] {
    return (this.db.prepare('SELECT * FROM groups ORDER BY name').all() as Row[]).map(toGroup);
  }

  put(input: GroupInput): Group {
    const name = checkName('name', input.name);
    const bootMode = input.bootMode ? checkBootMode(input.bootMode) : null;
    const loader = input.loader ? checkLoader(input.loader) : null;
    const kernelArgs = input.kernelArgs ? checkKernelArgs('kernelArgs', input.kernelArgs) : null;
    let bootFiles: string | null = null;
    if (input.bootFiles) {
      for (const [arch, file] of Object.entries(input.bootFiles)) {
        if (!ARCHES.includes(arch as ClientArch)) throw new InventoryError('invalid', `bootFiles.${arch}`, `unknown architecture (expected ${ARCHES.join(', ')})`);
        if (!/^https?:\/\//.test(file)) checkBootFileName(`bootFiles.${arch}`, file);
      }
      bootFiles = JSON.stringify(input.bootFiles);
    }
    return this.db.transaction(() => {
      if (input.root && !this.db.prepare('SELECT 1 FROM roots WHERE name = ?').get(input.root)) {
        throw new InventoryError('unknown_reference', 'root', `no root named ${input.root}`);
      }
      const now = Date.now();
      this.db.prepare(`INSERT INTO groups (name, root, boot_mode, loader, kernel_args, boot_files, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(name) DO UPDATE SET root = excluded.root, boot_mode = excluded.boot_mode, loader = excluded.loader,
          kernel_args = excluded.kernel_args, boot_files = excluded.boot_files, updated_at = excluded.updated_at`)
        .run(name, input.root ?? null, bootMode, loader, kernelArgs, bootFiles, now, now);
      assertMaintenanceRule(this.db, this.bootDefaults);
      return this.get(name)!;
    }).immediate();
  }

  remove(name: string): Group {
    return this.db.transaction(() => {
      const cur = this.get(name);
      if (!cur) throw new InventoryError('not_found', 'name', `no group named ${name}`);
      const n = this.db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM machines WHERE group_name = ?').get(name)!.n;
      if (n > 0) throw new InventoryError('in_use', 'name', `group ${name} still has ${n} machine(s)`);
      this.db.prepare('DELETE FROM groups WHERE name = ?').run(name);
      return cur;
    }).immediate();
  }
}
