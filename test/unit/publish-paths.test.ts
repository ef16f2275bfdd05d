/**
 * Publishing a generation's kernel and initrd reads them from the root tree on the host: a
 * link in the tree must never make it publish a host file (the traversal corpus of issue 7,
 * for root generations).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publishFiles } from '../../server/roots/publish.js';

let dir: string;
let tree: string;
let tftp: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-publish-'));
  tree = join(dir, 'gen-1');
  tftp = join(dir, 'tftp');
  mkdirSync(join(tree, 'boot'), { recursive: true });
  mkdirSync(join(tree, 'etc'), { recursive: true });
  mkdirSync(tftp);
  writeFileSync(join(tree, 'boot', 'vmlinuz-6.1'), 'kernel');
  writeFileSync(join(tree, 'etc', 'shadow'), 'the root tree own shadow');
  writeFileSync(join(dir, 'host-secret'), 'host secret');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const publish = (from: string) => publishFiles(tree, tftp, [{ from, name: 'vmlinuz-6.1@lab', mode: 0o644 }]);

describe('publishing from a root tree', () => {
  it('a `..` path stays inside the tree, as in a chroot: /boot/../../host-secret is the tree\'s /host-secret', async () => {
    await expect(publish('/boot/../../host-secret')).rejects.toThrow(/ENOENT/);
    expect(existsSync(join(tftp, 'vmlinuz-6.1@lab'))).toBe(false);
  });

  it('copies a regular file, and a link that stays inside the tree', async () => {
    await publish('/boot/vmlinuz-6.1');
    expect(readFileSync(join(tftp, 'vmlinuz-6.1@lab'), 'utf8')).toBe('kernel');
    symlinkSync('vmlinuz-6.1', join(tree, 'boot', 'vmlinuz'));
    writeFileSync(join(tree, 'boot', 'vmlinuz-6.1'), 'kernel 2');
    await publish('/boot/vmlinuz');
    expect(readFileSync(join(tftp, 'vmlinuz-6.1@lab'), 'utf8')).toBe('kernel 2');
  });

  it.each([
    ['an absolute link to a host file', () => symlinkSync(join(dir, 'host-secret'), join(tree, 'boot', 'evil')), '/boot/evil'],
    ['a relative link climbing out', () => symlinkSync('../../host-secret', join(tree, 'boot', 'evil')), '/boot/evil'],
    ['a directory link out of the tree', () => symlinkSync(dir, join(tree, 'boot', 'out')), '/boot/out/host-secret'],
    ['a directory', () => undefined, '/boot'],
  ])('refuses %s, and nothing lands in the TFTP root', async (_what, make, from) => {
    make();
    await expect(publish(from)).rejects.toThrow(/refusing|not a path inside the root/);
    expect(existsSync(join(tftp, 'vmlinuz-6.1@lab'))).toBe(false);
  });
});
