import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkName, isRefusal, resolveStatic } from '../../server/tftp/files.js';

let base: string;
let root: string;

beforeAll(async () => {
  base = realpathSync(await mkdtemp(path.join(tmpdir(), 'sidereal-tftp-files-')));
  root = path.join(base, 'root');
  await mkdir(path.join(root, 'boot'), { recursive: true });
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(root, 'boot', 'vmlinuz'), 'kernel');
  await writeFile(path.join(root, 'etc', 'passwd'), 'inside');
  await writeFile(path.join(root, '%2e%2e'), 'literal');
  await writeFile(path.join(base, 'secret'), 'outside');
  await symlink(path.join(base, 'secret'), path.join(root, 'out-link'));
  await symlink('..', path.join(root, 'boot', 'up'));
  await symlink(base, path.join(root, 'basedir'));
  await symlink('boot/vmlinuz', path.join(root, 'in-link'));
  await symlink('loop-b', path.join(root, 'loop-a'));
  await symlink('loop-a', path.join(root, 'loop-b'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const refused = (req: string) => {
  const r = resolveStatic(root, req);
  expect(r.kind, req).toBe('missing');
  return r.kind === 'missing' ? r.reason : '';
};

describe('resolveStatic', () => {
  it('serves files inside the root, with or without a leading slash', () => {
    expect(resolveStatic(root, 'boot/vmlinuz')).toEqual({ kind: 'static', path: path.join(root, 'boot/vmlinuz') });
    expect(resolveStatic(root, '/boot/vmlinuz')).toEqual({ kind: 'static', path: path.join(root, 'boot/vmlinuz') });
    expect(resolveStatic(root, 'boot//./vmlinuz')).toEqual({ kind: 'static', path: path.join(root, 'boot/vmlinuz') });
  });
  it('maps an absolute /etc/passwd inside the root', () => {
    expect(resolveStatic(root, '/etc/passwd')).toEqual({ kind: 'static', path: path.join(root, 'etc/passwd') });
  });
  it('treats %-escapes as literal names', () => {
    expect(resolveStatic(root, '%2e%2e')).toEqual({ kind: 'static', path: path.join(root, '%2e%2e') });
    expect(resolveStatic(root, '%2e%2e/secret').kind).toBe('missing');
  });
  it('follows a symlink that stays inside the root', () => {
    expect(resolveStatic(root, 'in-link')).toEqual({ kind: 'static', path: path.join(root, 'boot/vmlinuz') });
  });

  const corpus: Array<[string, RegExp]> = [
    ['..', /`\.\.`/],
    ['../etc/passwd', /`\.\.`/],
    ['/../x', /`\.\.`/],
    ['a/../../b', /`\.\.`/],
    ['boot/../boot/vmlinuz', /`\.\.`/],
    ['..\\..\\etc\\passwd', /backslash/],
    ['boot\\vmlinuz', /backslash/],
    ['boot/vmlinuz\0.png', /NUL/],
    ['a'.repeat(300), /300 bytes/],
    ['/', /empty/],
    ['', /empty/],
    ['out-link', /outside the root/],
    ['boot/up/../secret', /`\.\.`/],
    ['basedir/secret', /outside the root/],
    ['boot/up', /directory/],
    ['boot', /directory/],
    ['loop-a', /loop/],
  ];
  for (const [req, why] of corpus) {
    it(`refuses ${JSON.stringify(req.length > 40 ? `${req.slice(0, 10)}...(${req.length})` : req)}`, () => {
      const reason = refused(req);
      expect(reason).toMatch(why);
      expect(isRefusal(reason)).toBe(true);
    });
  }

  it('a missing file is not found, not refused', () => {
    const reason = refused('boot/nope');
    expect(reason).toBe('not found');
    expect(isRefusal(reason)).toBe(false);
    expect(isRefusal(refused('boot/vmlinuz/x'))).toBe(false);
  });

  it('names of exactly 255 bytes pass the length check', () => {
    expect(checkName('a'.repeat(255)).ok).toBe(true);
    expect(checkName('é'.repeat(128)).ok).toBe(false); // 256 bytes
  });
});
