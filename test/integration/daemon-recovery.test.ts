/**
 * kill -9 in the middle of a chroot session (a build step, a `root exec`)
 * leaves mounts, a process and policy-rc.d in the root tree; the next
 * `sidereal serve` undoes all of it before serving, and logs what it did.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chrootTestsRunnable, makeBusyboxRoot, removeBusyboxBase, type BusyboxRoot } from '../helpers/chroot-busybox.js';
import { startServe, writeConfig } from '../helpers/serve.js';
import { mountsUnder } from '../../server/roots/mounts.js';

const RUNNER = resolve('dist/test/helpers/chroot-runner.js');
const runnable = chrootTestsRunnable();

describe.skipIf(!runnable)('daemon start after a crash', () => {
  let tree: BusyboxRoot;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    tree = await makeBusyboxRoot({ devNodes: true });
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (tree) await removeBusyboxBase(tree.base);
  });

  it('unmounts and cleans root trees a killed session left, before serving', async () => {
    expect(existsSync(RUNNER), 'run npx tsc -p tsconfig.json first').toBe(true);
    child = spawn(process.execPath, [RUNNER, tree.root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<boolean>((done) => {
      const timer = setTimeout(() => done(false), 20_000);
      createInterface({ input: child!.stdout! }).on('line', (l) => { if (l.includes('"ready"')) { clearTimeout(timer); done(true); } });
    });
    expect(ready).toBe(true);
    expect((await mountsUnder(tree.root)).length).toBeGreaterThanOrEqual(3);
    process.kill(child.pid!, 'SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    expect((await mountsUnder(tree.root)).length).toBeGreaterThanOrEqual(3); // left behind

    mkdirSync(join(tree.base, 'tftp'));
    const config = writeConfig(join(tree.base, 'sidereal.yaml'), {
      serverAddress: '127.0.0.1', dataDir: join(tree.base, 'data'),
      dhcp: { enabled: false, subnet: '127.0.0.0/24' }, tftp: { enabled: false, root: join(tree.base, 'tftp') },
      http: { listen: '127.0.0.1', port: 18080 }, api: { listen: '127.0.0.1', port: 18081 },
      roots: { dir: tree.base },
    });
    // On this host, not in a namespace: `ip netns exec` would give the daemon a mount namespace of its own,
    // where unmounting would not touch the mounts the killed session left here. It listens on loopback only.
    const served = await startServe(null, config);
    try {
      expect(await mountsUnder(tree.base)).toEqual([]);
      expect(existsSync(join(tree.root, 'usr/sbin/policy-rc.d'))).toBe(false);
      const line = served.lines.find((l) => l.msg === 'recovered root trees left by a crash') as { unmounted: string[]; killed: number[] } | undefined;
      expect(line?.unmounted.length).toBeGreaterThanOrEqual(3);
      expect(line?.killed).toHaveLength(1); // the `sleep` the session ran
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });
});
