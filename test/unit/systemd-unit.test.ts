/**
 * The shipped systemd unit (packaging/systemd/sidereal.service): systemd accepts it, the
 * directories the example config writes are the ones it leaves writable, and every
 * capability it keeps is explained in the README.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/config.js';
import { repoRoot } from '../helpers/serve.js';

const unitFile = join(repoRoot, 'packaging', 'systemd', 'sidereal.service');
const unit = readFileSync(unitFile, 'utf8');
const setting = (key: string) => unit.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1).trim() ?? '';

describe('the systemd unit', () => {
  it('is accepted by systemd-analyze verify', () => {
    const out = execFileSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    expect(out.trim()).toBe('');
  });

  it('leaves writable exactly what the example config writes: data, TFTP root, roots, build cache, exports file', () => {
    const config = loadConfig(join(repoRoot, 'examples', 'sidereal.yaml'));
    const writable = setting('ReadWritePaths').split(/\s+/).map((w) => w.replace(/^-/, ''));
    const under = (p: string) => writable.some((w) => p === w || p.startsWith(`${w}/`));
    for (const p of [config.dataDir, config.tftp.root, config.roots.dir, config.roots.cacheDir, dirname(config.nfs.exportsFile)]) {
      expect(under(p), `${p} is not in ReadWritePaths`).toBe(true);
    }
    expect(setting('ProtectSystem')).toBe('strict');
    expect(setting('PrivateTmp')).toBe('yes');
  });

  it('keeps only capabilities the README explains', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const caps = setting('CapabilityBoundingSet').split(/\s+/);
    expect(caps.length).toBeGreaterThan(0);
    for (const c of caps) expect(readme, `${c} is not explained in the README`).toMatch(new RegExp(`\\| \`${c}\` \\|`));
  });
});
