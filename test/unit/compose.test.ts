/**
 * docker-compose.yml, as Compose reads it (`docker-compose config`: no engine needed): the
 * appliance on the host network, privileged (debootstrap, chroot mounts, exportfs), with the
 * config read-only and every path the example config uses kept on a volume.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/serve.js';

const hasCompose = existsSync('/usr/bin/docker-compose');
if (!hasCompose && process.env.CI) throw new Error('CI must check docker-compose.yml: install docker-compose (scripts/install-deps.sh)');

describe.skipIf(!hasCompose)('docker-compose.yml', () => {
  it('is valid Compose, host network, privileged, with the data, TFTP, roots and cache on volumes', async () => {
    const r = await execa('docker-compose', ['-f', path.join(repoRoot, 'docker-compose.yml'), 'config'], { cwd: repoRoot, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const svc = parse(r.stdout).services.sidereal;
    expect(svc.network_mode).toBe('host');
    expect(svc.privileged).toBe(true);
    // Compose v1 prints `source:target:mode`, v2 objects: read both.
    const volumes = (svc.volumes as Array<string | { target: string; read_only?: boolean }>).map((v) => {
      if (typeof v !== 'string') return { target: v.target, readOnly: !!v.read_only };
      const [, target, mode] = v.split(':');
      return { target: target!, readOnly: mode === 'ro' };
    });
    const targets = volumes.map((v) => v.target);
    const example = parse(readFileSync(path.join(repoRoot, 'examples/sidereal.yaml'), 'utf8'));
    for (const p of [example.dataDir, example.tftp.root, example.roots.dir, example.roots.cacheDir, '/etc/exports.d']) expect(targets).toContain(p);
    expect(volumes.find((v) => v.target === '/etc/sidereal')?.readOnly).toBe(true);
  });
});
