/**
 * `npm run bench` must keep working: its quick mode runs every section but
 * the QEMU storm (tiny files, one run each; about 75 s here) against the
 * real reference servers, and the figures must be whole: every section
 * present with rows, no transfer or client failed, every simulated node
 * served. The figures themselves are not judged here (timed tests lie on a
 * shared machine); bench/RESULTS.md holds the measured ones.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns } from '../helpers/netns.js';
import { repoRoot } from '../helpers/serve.js';
import type { Section } from '../../bench/lib/report.js';

const netnsOk = await canUseNetns();

describe.skipIf(!netnsOk)('npm run bench, quick', () => {
  it('runs every section against the reference servers with no failure', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sidereal-bench-smoke-'));
    try {
      const r = await execa(process.execPath, [join(repoRoot, 'dist', 'bench', 'all.js'), '--quick', '--skip', 'qemu-storm'], {
        env: { SIDEREAL_BENCH_RESULTS: out }, reject: false, timeout: 8 * 60_000,
      });
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
      const json = readdirSync(out).find((f) => f.endsWith('.json'))!;
      const doc = JSON.parse(readFileSync(join(out, json), 'utf8')) as { sections: Section[]; failed: string[] };
      expect(doc.failed).toEqual([]);
      expect(doc.sections.map((s) => s.name)).toEqual(['tftp', 'dhcp', 'http', 'inventory', 'storm']);
      for (const s of doc.sections) expect(s.rows.length, s.name).toBeGreaterThan(0);
      const rows = doc.sections.flatMap((s) => s.rows.map((row) => ({ s: s.name, row })));
      // Every "failed ..." figure is 0, for Sidereal and for each reference.
      const failures = rows.filter(({ row }) => /failed/.test(row.metric));
      expect(failures.length).toBeGreaterThanOrEqual(3);
      for (const { s, row } of failures) {
        expect(row.sidereal.max, `${s}: ${row.case}`).toBe(0);
        for (const [ref, st] of Object.entries(row.others)) expect(st.max, `${s}: ${row.case} (${ref})`).toBe(0);
      }
      // Every simulated node of the storm got everything, from both servers.
      const served = rows.find(({ s, row }) => s === 'storm' && row.metric === 'nodes served')!.row;
      expect(served.sidereal.min).toBe(served.target!.value);
      expect(served.others.dnsmasq!.min).toBe(served.target!.value);
      // The markdown has the targets table first.
      const md = readFileSync(join(out, json.replace(/\.json$/, '.md')), 'utf8');
      expect(md).toMatch(/\*\*Targets: \d+ of \d+ met\.\*\*/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 10 * 60_000);
});
