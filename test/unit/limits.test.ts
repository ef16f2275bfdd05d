/** The open-files check at start (server/daemon/limits.ts): the caps against RLIMIT_NOFILE. */
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { descriptorsNeeded, openFilesLimit, openFilesProblem } from '../../server/daemon/limits.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';

let f: Fixture | undefined;
afterEach(() => f?.cleanup());

describe('open files', () => {
  it('counts two descriptors per TFTP session and four per HTTP connection, and warns naming the caps when the limit is lower', () => {
    f = makeFixture();
    expect(descriptorsNeeded(f.config)).toBe(2 * 1024 + 4 * 1024 + 256);
    const problem = openFilesProblem(f.config, 1024);
    expect(problem).toMatch(/allow 6400 open files \(tftp\.maxSessions 1024 and http\.maxConnections 1024/);
    expect(problem).toMatch(/may open 1024: raise LimitNOFILE/);
    expect(openFilesProblem(f.config, 16384)).toBeNull();
    expect(openFilesProblem(f.config, undefined)).toBeNull();
  });

  it('reads the soft limit from a limits file, and this process has one', () => {
    f = makeFixture();
    const file = `${f.dir}/limits`;
    writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            2048                 524288               files\n');
    expect(openFilesLimit(file)).toBe(2048);
    expect(openFilesLimit(`${f.dir}/none`)).toBeUndefined();
    expect(openFilesLimit()).toBeGreaterThan(0);
  });
});
