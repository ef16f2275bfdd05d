/**
 * Separate processes racing on one inventory file, as an admin's scripts
 * and the daemon do: eight CLI processes register the same MAC at once
 * (each through the in-process API, --offline), and exactly one wins.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, writeConfig } from '../helpers/serve.js';

describe('concurrent registrations from separate processes', () => {
  let dir: string;
  let config: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sidereal-race-'));
    mkdirSync(join(dir, 'tftp'));
    config = writeConfig(join(dir, 'sidereal.yaml'), {
      serverAddress: '10.77.0.1', dataDir: join(dir, 'data'),
      dhcp: { subnet: '10.77.0.0/24', pool: { start: '10.77.0.100', end: '10.77.0.150' } }, tftp: { root: join(dir, 'tftp') },
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lets exactly one of eight processes register a MAC, and the others fail with exit 1 naming the field', async () => {
    expect((await cli(config, '--offline', 'machine', 'list')).code).toBe(0); // create and migrate the file first
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      cli(config, '--offline', 'machine', 'add', '52:54:00:77:00:10', '--hostname', `racer${i}`)));
    expect(runs.filter((r) => r.code === 0)).toHaveLength(1);
    const losers = runs.filter((r) => r.code !== 0);
    expect(losers).toHaveLength(7);
    for (const r of losers) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: mac: 52:54:00:77:00:10 is already registered as racer\d/);
    }
    const list = JSON.parse((await cli(config, '--offline', '--json', 'machine', 'list')).stdout);
    expect(list.total).toBe(1);
    const audit = JSON.parse((await cli(config, '--offline', '--json', 'status')).stdout);
    expect(audit.inventory.machines).toBe(1);
  });
});
