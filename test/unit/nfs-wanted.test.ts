/** What the inventory wants exported (wanted.ts) and how each server is told (render.ts). */
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderGaneshaExports, renderKernelExports } from '../../server/nfs/render.js';
import { wantedExports } from '../../server/nfs/wanted.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { bootTarget } from '../../server/boot/render.js';
import { planFor } from '../../server/boot/decide.js';

let f: Fixture;
afterEach(() => f?.cleanup());

function setup(): { gen1: string; gen2: string; home: string } {
  f = makeFixture((doc) => { doc.nfs = { home: { path: path.join(doc.dataDir as string, '..', 'home') } }; });
  const gen1 = path.join(f.dir, 'roots', 'lab', 'gen-20261120T100000000Z');
  const gen2 = path.join(f.dir, 'roots', 'lab', 'gen-20261121T100000000Z');
  mkdirSync(gen1, { recursive: true });
  mkdirSync(gen2, { recursive: true });
  mkdirSync(path.join(f.dir, 'home'));
  symlinkSync(path.basename(gen2), path.join(f.dir, 'roots', 'lab', 'current'));
  f.inv.roots.put({ name: 'lab', arch: 'amd64', kernel: 'k@lab', initrd: 'i@lab', nfsPath: path.join(f.dir, 'roots', 'lab', 'current') });
  return { gen1, gen2, home: path.join(f.dir, 'home') };
}

describe('wanted exports', () => {
  it('the live generation ro to the subnet, rw first to the maintenance machine; older ones while booted; home rw; missing trees reported', () => {
    const { gen1, gen2, home } = setup();
    f.inv.machines.add('52:54:00:77:00:10', { ipv4: '10.77.0.10', root: 'lab', bootMode: 'maintenance' });
    f.inv.machines.add('52:54:00:77:00:11', { ipv4: '10.77.0.11', root: 'lab' });
    f.inv.roots.put({ name: 'gone', arch: 'amd64', kernel: 'k@gone', initrd: 'i@gone', nfsPath: '/nonexistent/sidereal/gone/current' });
    // The menus sent n11 to the old generation before the rebuild, and an unknown client too.
    f.inv.nfs.recordBoot('52:54:00:77:00:11', 'lab', gen1, 'root');
    f.inv.nfs.recordBoot('52:54:00:77:00:99', 'lab', gen1, 'root');

    const w = wantedExports(f.inv, f.config);
    expect(w.exports.map((e) => [e.path, e.live, e.clients.map((c) => `${c.match}:${c.access}`), e.bootedBy])).toEqual([
      [gen1, false, ['10.77.0.0/24:ro'], ['52:54:00:77:00:11', '52:54:00:77:00:99']],
      [gen2, true, ['10.77.0.10/32:rw', '10.77.0.0/24:ro'], []],
      [home, true, ['10.77.0.0/24:rw'], []],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
    expect(w.problems).toEqual([expect.objectContaining({ root: 'gone', message: expect.stringMatching(/does not exist: root gone is not exported/) })]);

    expect(renderKernelExports(w.exports)).toContain(`"${gen2}" 10.77.0.10/32(rw,no_subtree_check,async,no_root_squash) 10.77.0.0/24(ro,no_subtree_check,async,no_root_squash)`);
    const ids = new Map<string, number>();
    const g = renderGaneshaExports(w.exports, (p) => f.inv.nfs.exportId(p));
    for (const e of w.exports) ids.set(e.path, f.inv.nfs.exportId(e.path));
    expect(new Set(ids.values()).size).toBe(3);
    expect(g).toContain(`Export_Id = ${ids.get(gen2)};\n  Path = "${gen2}";\n  Pseudo = "${gen2}";`);
    // Ids stay with their paths (ganesha puts them in file handles); a new path gets a free one.
    expect(f.inv.nfs.exportId(gen1)).toBe(ids.get(gen1));
    expect(f.inv.nfs.exportId('/new/path')).toBe(4);
  });

  it('the menu names the generation `current` points at, so the node keeps it whatever rebuilds follow', () => {
    const { gen2 } = setup();
    f.inv.machines.add('52:54:00:77:00:11', { ipv4: '10.77.0.11', root: 'lab' });
    expect(bootTarget(planFor(f.inv, f.config, '52:54:00:77:00:11'))).toEqual({ root: 'lab', nfsPath: gen2, mode: 'root' });
    expect(f.inv.nfs.recordBoot('52:54:00:77:00:11', 'lab', gen2, 'root')).toBe(true);
    expect(f.inv.nfs.recordBoot('52:54:00:77:00:11', 'lab', gen2, 'root')).toBe(false);
  });
});
