import { describe, expect, it } from 'vitest';
import { isStrictlyUnder, mountsUnder, parseMountinfo, unescapeMountField } from '../../server/roots/mounts.js';

const SAMPLE = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '36 22 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
  '40 22 0:39 / /srv/roots/my\\040root/proc rw,nosuid,nodev,noexec,relatime shared:20 - proc proc rw',
  '41 22 0:22 / /srv/roots/my\\040root/sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw',
  '42 22 0:40 / /srv/roots/my\\040root/dev rw,nosuid - tmpfs tmpfs rw,size=1024k,mode=755',
  '43 42 0:41 / /srv/roots/my\\040root/dev/pts rw,nosuid,noexec - devpts devpts rw,gid=5,mode=620,ptmxmode=666',
  '44 22 0:42 / /srv/roots/my\\040root/proc rw - proc proc rw',
  '45 22 0:43 / /srv/roots2/proc rw - proc proc rw',
  '46 22 0:44 / /srv/roots rw - btrfs /dev/vdb rw',
  '47 22 0:45 /sub\\134dir /weird\\011tab\\012nl rw - ext4 /dev/my\\040disk rw',
  'garbage line',
  '',
].join('\n');

describe('mountinfo parsing', () => {
  const entries = parseMountinfo(SAMPLE);

  it('parses every well-formed line, skips the rest', () => {
    expect(entries).toHaveLength(10);
    expect(entries[1]).toEqual({
      id: 36, parentId: 22, dev: '98:0', root: '/mnt1', mountPoint: '/mnt2', mountOptions: 'rw,noatime',
      optionalFields: ['master:1'], fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue',
    });
    expect(entries[0]!.optionalFields).toEqual(['shared:1']);
    expect(entries[3]!.optionalFields).toEqual([]);
  });

  it('unescapes \\040 (space), \\011 (tab), \\012 (newline), \\134 (backslash)', () => {
    expect(entries[2]!.mountPoint).toBe('/srv/roots/my root/proc');
    const w = entries[9]!;
    expect(w.mountPoint).toBe('/weird\ttab\nnl');
    expect(w.root).toBe('/sub\\dir');
    expect(w.source).toBe('/dev/my disk');
    expect(unescapeMountField('a\\040b\\\\')).toBe('a b\\\\');
  });

  it('mountsUnder: strictly under (not the dir itself, not a sibling prefix), deepest first, top of a stack first', async () => {
    const under = await mountsUnder('/srv/roots', entries);
    expect(under.map((m) => m.id)).toEqual([43, 44, 42, 41, 40]);
    expect(under.some((m) => m.mountPoint === '/srv/roots')).toBe(false);
    expect(under.some((m) => m.mountPoint.startsWith('/srv/roots2'))).toBe(false);
    expect((await mountsUnder('/srv/roots/my root', entries)).map((m) => m.id)).toEqual([43, 44, 42, 41, 40]);
    expect(await mountsUnder('/srv/roots/my root/dev/pts', entries)).toEqual([]);
  });

  it('isStrictlyUnder', () => {
    expect(isStrictlyUnder('/a/b', '/a')).toBe(true);
    expect(isStrictlyUnder('/a', '/a')).toBe(false);
    expect(isStrictlyUnder('/ab', '/a')).toBe(false);
    expect(isStrictlyUnder('/a/b', '/')).toBe(false);
  });
});
