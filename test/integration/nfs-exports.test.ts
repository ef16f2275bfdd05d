/**
 * The NFS export manager against real servers:
 *  - ganesha: nfs-ganesha (and rpcbind) in a server namespace; the manager writes the EXPORT
 *    file and reloads ganesha with SIGHUP; a real NFS client (libnfs's nfs-ls / nfs-cp) in a
 *    node namespace checks what each address may do: the subnet reads the live generation and
 *    cannot write it, the maintenance machine's address writes it; after a rebuild the older
 *    generation stays exported while a machine's last boot used it, and goes when none does.
 *  - kernel: exportfs (nfs-kernel-server's) applies /etc/exports.d/sidereal.exports, checked
 *    with exportfs -v; run in a private mount namespace so the host's exports are untouched.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGanesha, type Ganesha } from '../../lab/ganesha.js';
import { silentLogger } from '../../server/log.js';
import { ganeshaBackend } from '../../server/nfs/backends.js';
import { ExportManager } from '../../server/nfs/manager.js';
import { canUseNetns, createNs, destroyAll, linkNamespaces, nsExec } from '../helpers/netns.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { repoRoot } from '../helpers/serve.js';

const netnsOk = await canUseNetns();
const hasGanesha = existsSync('/usr/bin/ganesha.nfsd') && existsSync('/usr/bin/nfs-ls');
if (netnsOk && !hasGanesha && process.env.CI) throw new Error('CI must run the NFS tests: install nfs-ganesha, nfs-ganesha-vfs, libnfs-utils (scripts/install-deps.sh)');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!netnsOk || !hasGanesha)('nfs exports with nfs-ganesha and a real NFS client', () => {
  let f: Fixture;
  let srv = '';
  let node = '';
  let nodeIf = '';
  let ganesha: Ganesha;
  let manager: ExportManager;
  const roots = () => path.join(f.dir, 'roots');
  const gen = (g: string) => path.join(roots(), 'lab', g);
  const G1 = 'gen-20261120T100000000Z';
  const G2 = 'gen-20261121T100000000Z';

  /** The node's source address for the server: the subnet one or the maintenance one. */
  const from = async (addr: string) => nsExec(node, 'ip', ['route', 'replace', '10.97.0.1/32', 'dev', nodeIf, 'src', addr]);
  const ls = async (p: string) => nsExec(node, 'nfs-ls', [`nfs://10.97.0.1${p}`], { reject: false, timeout: 20_000 });
  const write = async (p: string) => {
    const local = path.join(f.dir, 'upload');
    writeFileSync(local, 'written over NFS\n');
    return nsExec(node, 'nfs-cp', [local, `nfs://10.97.0.1${p}`], { reject: false, timeout: 20_000 });
  };

  beforeAll(async () => {
    f = makeFixture((doc) => {
      doc.dhcp = { subnet: '10.97.0.0/24', router: '10.97.0.1', pool: { start: '10.97.0.100', end: '10.97.0.150' } };
      doc.serverAddress = '10.97.0.1';
      doc.nfs = { backend: 'ganesha' };
    });
    for (const g of [G1, G2]) {
      mkdirSync(path.join(gen(g), 'etc'), { recursive: true });
      writeFileSync(path.join(gen(g), 'etc', 'motd'), `${g}\n`);
    }
    symlinkSync(G1, path.join(roots(), 'lab', 'current'));
    f.inv.roots.put({ name: 'lab', arch: 'amd64', kernel: 'vmlinuz@lab', initrd: 'initrd@lab', nfsPath: path.join(roots(), 'lab', 'current') });
    f.inv.machines.add('52:54:00:97:00:10', { hostname: 'n10', ipv4: '10.97.0.10', root: 'lab' });
    f.inv.machines.add('52:54:00:97:00:11', { hostname: 'master', ipv4: '10.97.0.11', root: 'lab', bootMode: 'maintenance' });

    srv = await createNs('nfsrv');
    node = await createNs('nfnode');
    ({ bIf: nodeIf } = await linkNamespaces(srv, '10.97.0.1/24', node, '10.97.0.10/24', 'n'));
    await nsExec(node, 'ip', ['addr', 'add', '10.97.0.11/24', 'dev', nodeIf]);
    ganesha = await startGanesha(srv, f.dir);
    const backend = ganeshaBackend(ganesha.exportsFile, ganesha.pidFile);
    manager = new ExportManager(f.inv, f.config, silentLogger(), backend);
    await manager.start();
    await sleep(1500); // ganesha's reload after SIGHUP
  }, 60_000);

  afterAll(async () => {
    await manager?.close();
    await ganesha?.stop();
    await destroyAll();
    f?.cleanup();
  });

  it('exports the live generation read-only to the subnet and read-write to the maintenance machine only', async () => {
    expect(manager.status()).toMatchObject({ backend: 'ganesha', ok: true, problems: [] });
    const text = readFileSync(ganesha.exportsFile, 'utf8');
    expect(text).toContain(`Path = "${gen(G1)}"`);
    expect(text.indexOf('10.97.0.11/32; Access_Type = RW')).toBeLessThan(text.indexOf('10.97.0.0/24; Access_Type = RO'));

    await from('10.97.0.10');
    const l = await ls(gen(G1));
    expect(l.exitCode, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/ etc$/m);
    const denied = await write(`${gen(G1)}/etc/from-node`);
    expect(denied.exitCode).not.toBe(0);
    expect(`${denied.stdout}${denied.stderr}`).toMatch(/ROFS|ACCES|denied/i);
    expect(existsSync(path.join(gen(G1), 'etc', 'from-node'))).toBe(false);

    await from('10.97.0.11');
    const ok = await write(`${gen(G1)}/etc/from-master`);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(readFileSync(path.join(gen(G1), 'etc', 'from-master'), 'utf8')).toBe('written over NFS\n');
    // The older generation is not exported: no machine booted it.
    expect((await ls(gen(G2))).exitCode).not.toBe(0);
  }, 60_000);

  it('after a rebuild, keeps the generation a running node booted until no machine uses it', async () => {
    // n10 booted G1 (its menu said so); then a rebuild makes G2 current.
    f.inv.nfs.recordBoot('52:54:00:97:00:10', 'lab', gen(G1), 'root');
    symlinkSync(G2, path.join(roots(), 'lab', '.current.tmp'));
    renameSync(path.join(roots(), 'lab', '.current.tmp'), path.join(roots(), 'lab', 'current'));
    await manager.changed('test: rebuild');
    await sleep(1500);
    await from('10.97.0.10');
    expect((await ls(gen(G2))).exitCode).toBe(0);
    expect((await ls(gen(G1))).exitCode).toBe(0);
    // The maintenance machine writes the new live generation, not the old one any more.
    expect(manager.status().exports.find((e) => e.path === gen(G1))).toMatchObject({ live: false, bootedBy: ['52:54:00:97:00:10'] });

    // n10 reboots into G2: nothing uses G1 now.
    f.inv.nfs.recordBoot('52:54:00:97:00:10', 'lab', gen(G2), 'root');
    await manager.changed('test: reboot');
    await sleep(1500);
    expect((await ls(gen(G1))).exitCode).not.toBe(0);
    expect((await ls(gen(G2))).exitCode).toBe(0);
  }, 60_000);

  it('reports a root whose tree vanished, and a backend that cannot load (ganesha stopped)', async () => {
    f.inv.roots.put({ name: 'gone', arch: 'amd64', kernel: 'k@gone', initrd: 'i@gone', nfsPath: path.join(roots(), 'gone', 'current') });
    await ganesha.stop();
    await manager.changed('test');
    const st = manager.status();
    expect(st.problems).toEqual([expect.objectContaining({ root: 'gone', message: expect.stringContaining('does not exist') })]);
    expect(st.ok).toBe(false);
    expect(st.error).toMatch(/nfs-ganesha is not running/);
  }, 30_000);
});

describe.skipIf(!netnsOk)('nfs exports with the kernel backend (exportfs)', () => {
  it('writes exports.d atomically, runs exportfs -ra and checks exportfs -v', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sidereal-exportfs-'));
    try {
      mkdirSync(path.join(dir, 'root-a'));
      // In a mount namespace of its own, over tmpfs /etc/exports.d and /var/lib/nfs: the host's exports stay as they are.
      const runner = path.join(repoRoot, 'dist/test/helpers/exportfs-runner.js');
      const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
        `mkdir -p /etc/exports.d && mount -t tmpfs x /etc/exports.d && mount -t tmpfs y /var/lib/nfs && ${process.execPath} ${runner} ${dir}`], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { file: string; exportfs: string; missingError: string };
      expect(out.file).toMatch(new RegExp(`^"${dir}/root-a" 10\\.77\\.0\\.10/32\\(rw,no_subtree_check,async,no_root_squash\\) 10\\.77\\.0\\.0/24\\(ro,`, 'm'));
      expect(out.exportfs).toMatch(new RegExp(`${dir}/root-a\\s+10\\.77\\.0\\.10/32\\(.*\\brw\\b`));
      expect(out.exportfs).toMatch(new RegExp(`${dir}/root-a\\s+10\\.77\\.0\\.0/24\\(.*\\bro\\b`));
      expect(out.missingError).toMatch(/exportfs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
