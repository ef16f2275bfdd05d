/**
 * Namespaces a killed test run left behind (lab/netns.ts): the first namespace a later process
 * makes removes those whose owner file names a dead process and that nothing runs in; one whose
 * owner lives, or with no owner file (not ours to judge), stays; an owner file without its
 * namespace is removed.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createNamespace, destroyAllNamespaces } from '../../lab/netns.js';
import { ownerToken } from '../../server/roots/owner.js';
import { canUseNetns } from '../helpers/netns.js';

const runnable = await canUseNetns();
if (!runnable && process.env.CI) throw new Error('CI must run the namespace test: needs network namespaces');
const names = { dead: 'sidzzzzdead', live: 'sidzzzzlive', unowned: 'sidzzzznone' };

describe.skipIf(!runnable)('namespaces left by a killed run', () => {
  afterAll(async () => {
    for (const n of Object.values(names)) {
      await execa('ip', ['netns', 'del', n], { reject: false });
      rmSync(`/run/sidereal-netns/${n}`, { force: true });
    }
    await destroyAllNamespaces();
  });

  it('are removed when their owner is gone; others stay', async () => {
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    mkdirSync('/run/sidereal-netns', { recursive: true });
    for (const n of Object.values(names)) await execa('ip', ['netns', 'add', n]);
    writeFileSync(`/run/sidereal-netns/${names.dead}`, `${dead.pid}:1\n`);
    writeFileSync(`/run/sidereal-netns/${names.live}`, `${ownerToken()}\n`);
    writeFileSync('/run/sidereal-netns/sidzzzzgone', `${ownerToken()}\n`);
    await createNamespace('reap');
    expect(existsSync(`/run/netns/${names.dead}`)).toBe(false);
    expect(existsSync(`/run/sidereal-netns/${names.dead}`)).toBe(false);
    expect(existsSync(`/run/netns/${names.live}`)).toBe(true);
    expect(existsSync(`/run/netns/${names.unowned}`)).toBe(true);
    // An owner file whose namespace was removed some other way goes too.
    expect(existsSync('/run/sidereal-netns/sidzzzzgone')).toBe(false);
  });
});
