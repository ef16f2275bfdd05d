/**
 * `sidereal root exec` and the CLI as an admin runs it on the server: the
 * command runs inside the root's tree with /proc bound, its exit code comes
 * back, it is audited, and nothing stays mounted, failure or not.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chrootTestsRunnable, makeBusyboxRoot, removeBusyboxBase, type BusyboxRoot } from '../helpers/chroot-busybox.js';
import { cli, writeConfig } from '../helpers/serve.js';
import { mountsUnder } from '../../server/roots/mounts.js';
import { Inventory } from '../../server/inventory/index.js';

const runnable = chrootTestsRunnable();

describe.skipIf(!runnable)('sidereal root exec', () => {
  let tree: BusyboxRoot;
  let config: string;

  beforeAll(async () => {
    tree = await makeBusyboxRoot({ devNodes: true });
    mkdirSync(join(tree.base, 'tftp'));
    config = writeConfig(join(tree.base, 'sidereal.yaml'), {
      serverAddress: '10.77.0.1', dataDir: join(tree.base, 'data'),
      dhcp: { subnet: '10.77.0.0/24' }, tftp: { root: join(tree.base, 'tftp') },
    });
    const add = await cli(config, '--offline', 'root', 'add', 'lab', '--kernel', 'vmlinuz@lab', '--initrd', 'initrd@lab', '--nfs-path', tree.root);
    expect(add.code, add.stderr).toBe(0);
  });
  afterAll(async () => {
    if (tree) await removeBusyboxBase(tree.base);
  });

  it('runs a command in the tree with /proc bound and returns its exit code; never leaves a mount', async () => {
    const ok = await cli(config, 'root', 'exec', 'lab', '--', 'cat', '/proc/self/status');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Name:\s+cat$/m);
    expect(await mountsUnder(tree.root)).toEqual([]);

    const failed = await cli(config, 'root', 'exec', 'lab', '--', 'sh', '-c', 'ls /usr/sbin/policy-rc.d && exit 7');
    expect(failed.code).toBe(7);
    expect(failed.stdout).toContain('/usr/sbin/policy-rc.d'); // services are blocked while it runs
    expect(await mountsUnder(tree.root)).toEqual([]);

    // arguments after -- belong to the command, even ones that look like the CLI's own
    const json = await cli(config, 'root', 'exec', 'lab', '--', 'echo', '--json');
    expect(json.stdout.trim()).toBe('--json');

    const inv = Inventory.open(join(tree.base, 'data'));
    try {
      const execs = inv.audit.list({ limit: 10, target: 'lab' }).filter((e) => e.action === 'root.exec');
      expect(execs.map((e) => (e.after as { exitCode: number }).exitCode)).toEqual([0, 7, 0]);
      expect(execs[2]!.actor).toMatch(/^cli:/);
    } finally {
      inv.close();
    }
  });

  it('refuses a root that does not exist and a missing command, naming what is wrong', async () => {
    const none = await cli(config, 'root', 'exec', 'nope', '--', 'true');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/name: no root named nope/);
    expect((await cli(config, 'root', 'exec', 'lab')).code).toBe(2);
  });
});
