/**
 * Chroot sessions on a tiny busybox root (root needed: mount, chroot):
 * proc/sys/devpts mounted for the duration, policy-rc.d, and cleanup on
 * success, failure, throw, abort and after a kill -9 (recoverLeftovers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readlink, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { alive } from '../helpers/procs.js';
import { POLICY_RC_D, execInChroot, recoverLeftovers, rootExec, withChroot } from '../../server/roots/chroot.js';
import { mountsUnder, readMountinfo, unmountAll } from '../../server/roots/mounts.js';
import { run } from '../../server/run.js';
import { chrootTestsRunnable, makeBusyboxRoot, quiet, removeBusyboxBase, type BusyboxRoot } from '../helpers/chroot-busybox.js';

const runnable = chrootTestsRunnable();
const RUNNER = path.resolve('dist/test/helpers/chroot-runner.js');

const bases: string[] = [];
const children: ChildProcess[] = [];

async function newRoot(opts: { devNodes?: boolean } = {}): Promise<BusyboxRoot> {
  const r = await makeBusyboxRoot(opts);
  bases.push(r.base);
  return r;
}

/** rootExec, collecting the output lines. */
async function execCollect(root: string, argv: string[], extra: Parameters<typeof rootExec>[2] = {}) {
  const lines: string[] = [];
  const code = await rootExec(root, argv, { logger: quiet, onLine: (l) => lines.push(l), ...extra });
  return { code, lines, text: lines.join('\n') };
}

/** PIDs of (non-zombie) processes whose root is `dir` or under it. */
async function processesIn(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const r = await readlink(`/proc/${name}/root`);
      if (r === dir || r.startsWith(`${dir}/`)) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}


async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
      await waitFor(() => !alive(c.pid!), 3000);
    }
  }
  for (const b of bases.splice(0)) await removeBusyboxBase(b);
});

afterAll(async () => {
  // Nothing of ours may stay mounted anywhere under /tmp.
  const left = (await readMountinfo()).filter((m) => m.mountPoint.includes('/sidereal-chroot-'));
  expect(left.map((m) => m.mountPoint)).toEqual([]);
});

describe.skipIf(!runnable)('chroot sessions on a busybox root', () => {
  it('rootExec: /proc is mounted inside (cat /proc/self/status), nothing is left mounted after', async () => {
    const { root } = await newRoot();
    const r = await execCollect(root, ['cat', '/proc/self/status']);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/^Name:\s+cat$/m);
    expect(r.text).toMatch(/^Pid:\s+\d+$/m);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('sees its own devpts on /dev/pts and a read-only sysfs; a root without device nodes gets a tmpfs /dev', async () => {
    const { root } = await newRoot();
    const r = await execCollect(root, ['sh', '-c', 'grep -E " /(dev|dev/pts|sys|proc) " /proc/self/mounts; ls /dev/pts; echo x > /dev/null && echo devnull-ok; ls -l /dev/ptmx']);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(/^devpts \/dev\/pts devpts \S*ptmxmode=666/m);
    expect(r.text).toMatch(/^sysfs \/sys sysfs ro,/m);
    expect(r.text).toMatch(/^proc \/proc proc /m);
    expect(r.text).toMatch(/^tmpfs \/dev tmpfs /m);
    expect(r.lines).toContain('ptmx');
    expect(r.lines).toContain('devnull-ok');
    expect(r.text).toMatch(/ptmx -> pts\/ptmx/);
    expect(await mountsUnder(root)).toEqual([]);
    expect(await readdir(path.join(root, 'dev'))).toEqual([]); // the tmpfs is gone, nothing was written to the root's /dev
  });

  it('a debootstrap-like /dev (device nodes present) is used as is: only /dev/pts is mounted', async () => {
    const { root } = await newRoot({ devNodes: true });
    const r = await execCollect(root, ['sh', '-c', 'grep -E " /dev " /proc/self/mounts; grep -c " /dev/pts devpts " /proc/self/mounts; echo x > /dev/null && echo devnull-ok']);
    expect(r.code).toBe(0);
    expect(r.text).not.toMatch(/ \/dev tmpfs/);
    expect(r.lines).toContain('1');
    expect(r.lines).toContain('devnull-ok');
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('a failing command (false, exit 1) still cleans up; the exit code is returned', async () => {
    const { root } = await newRoot();
    expect((await execCollect(root, ['false'])).code).toBe(1);
    expect(await mountsUnder(root)).toEqual([]);
    expect((await execCollect(root, ['sh', '-c', 'exit 7'])).code).toBe(7);
    expect(await mountsUnder(root)).toEqual([]);
    // a command that does not exist in the root: chroot says 127
    expect((await execCollect(root, ['/no/such/cmd'])).code).toBe(127);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('withChroot: fn throwing still cleans up and the error comes through', async () => {
    const { root } = await newRoot();
    await expect(
      withChroot(root, async (ctx) => {
        expect((await mountsUnder(ctx.rootDir)).length).toBeGreaterThanOrEqual(3);
        throw new Error('boom');
      }, { logger: quiet }),
    ).rejects.toThrow('boom');
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('an abort mid `sleep 30` kills the process and cleans up', async () => {
    const { root } = await newRoot();
    const ac = new AbortController();
    const t0 = Date.now();
    const p = rootExec(root, ['sh', '-c', 'echo started; exec sleep 30'], {
      logger: quiet,
      signal: ac.signal,
      onLine: (l) => { if (l === 'started') setTimeout(() => ac.abort(), 100); },
    });
    await expect(p).rejects.toMatchObject({ aborted: true });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await processesIn(root)).toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('background processes left inside the root (in the group or setsid) are stopped at the end of the session', async () => {
    const { root } = await newRoot();
    const t0 = Date.now();
    // one left in the command's process group, one escaped from it with setsid (found by its root directory)
    const r = await execCollect(root, ['sh', '-c', 'sleep 30 >/dev/null 2>&1 & setsid sleep 31 >/dev/null 2>&1 </dev/null & echo bg']);
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await processesIn(root)).toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('policy-rc.d (exit 101) is in place during the session and gone after; one that was there is left untouched', async () => {
    const { root } = await newRoot();
    const policy = path.join(root, 'usr/sbin/policy-rc.d');
    const r = await execCollect(root, ['sh', '-c', 'cat /usr/sbin/policy-rc.d; /usr/sbin/policy-rc.d; echo "rc=$?"']);
    expect(r.code).toBe(0);
    expect(r.text).toContain('exit 101');
    expect(r.lines).toContain('rc=101');
    expect(existsSync(policy)).toBe(false);

    const mine = '#!/bin/sh\n# the admin\'s own\nexit 0\n';
    await writeFile(policy, mine, { mode: 0o755 });
    const r2 = await execCollect(root, ['sh', '-c', '/usr/sbin/policy-rc.d; echo "rc=$?"']);
    expect(r2.lines).toContain('rc=0');
    expect(await readFile(policy, 'utf8')).toBe(mine);
  });

  it('i386: setarch i686 makes uname -m say i686; amd64 says x86_64', async () => {
    const { root } = await newRoot();
    expect((await execCollect(root, ['uname', '-m'], { arch: 'i386' })).lines).toEqual(['i686']);
    expect((await execCollect(root, ['uname', '-m'])).lines).toEqual([process.arch === 'x64' ? 'x86_64' : expect.any(String)]);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('environment: DEBIAN_FRONTEND=noninteractive, LC_ALL=C.UTF-8, nothing of ours leaks', async () => {
    const { root } = await newRoot();
    process.env.SIDEREAL_SECRET_TEST = 'leak';
    try {
      const r = await execCollect(root, ['sh', '-c', 'echo "fe=$DEBIAN_FRONTEND lc=$LC_ALL home=$HOME secret=$SIDEREAL_SECRET_TEST x=$X"'], { env: { X: 'y' } });
      expect(r.lines).toEqual(['fe=noninteractive lc=C.UTF-8 home=/root secret= x=y']);
    } finally {
      delete process.env.SIDEREAL_SECRET_TEST;
    }
  });

  it('refuses a root whose proc is a symlink out of it (it would mount over the host /proc)', async () => {
    const { root } = await newRoot();
    await rm(path.join(root, 'proc'), { recursive: true });
    await symlink('/proc', path.join(root, 'proc'));
    const before = (await readMountinfo()).length;
    await expect(rootExec(root, ['true'], { logger: quiet })).rejects.toThrow(/symbolic link/);
    expect(await mountsUnder(root)).toEqual([]);
    expect((await readMountinfo()).length).toBe(before);
  });

  it('refuses a second session on a root that has one open', async () => {
    const { root } = await newRoot();
    await withChroot(root, async () => {
      await expect(rootExec(root, ['true'], { logger: quiet })).rejects.toThrow(/already/);
    }, { logger: quiet });
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('unmountAll falls back to a lazy unmount when a mount is busy, and refuses nothing outside the dir', async () => {
    const { base } = await newRoot();
    const busy = path.join(base, 'busy');
    await mkdir(busy);
    await run(['mount', '-t', 'tmpfs', 'tmpfs', busy], { logger: quiet });
    const holder = spawn('sleep', ['30'], { cwd: busy, stdio: 'ignore' });
    children.push(holder);
    await waitFor(async () => (await readlink(`/proc/${holder.pid}/cwd`).catch(() => '')) === busy, 3000);
    const done = await unmountAll(base, { logger: quiet });
    expect(done).toEqual([busy]);
    expect(await mountsUnder(base)).toEqual([]);
  });

  it('kill -9 in the middle of a session leaves mounts behind; recoverLeftovers removes them all', async () => {
    expect(existsSync(RUNNER), `${RUNNER} missing: run npx tsc -p tsconfig.json first`).toBe(true);
    const { base, root } = await newRoot();
    const child = spawn(process.execPath, [RUNNER, root], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 20_000);
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        if (line.includes('"ready"')) { clearTimeout(timer); rl.close(); resolve(true); }
        if (line.includes('"fatal"')) { clearTimeout(timer); rl.close(); resolve(false); }
      });
      child.once('exit', () => { clearTimeout(timer); resolve(false); });
    });
    expect(ready).toBe(true);
    const during = await mountsUnder(root);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(existsSync(path.join(root, 'usr/sbin/policy-rc.d'))).toBe(true);

    process.kill(child.pid!, 'SIGKILL');
    expect(await waitFor(() => child.exitCode !== null || child.signalCode !== null, 5000)).toBe(true);
    expect((await mountsUnder(root)).map((m) => m.id).sort()).toEqual(during.map((m) => m.id).sort());
    const orphans = await processesIn(root); // the `sleep 30` survives its parent
    expect(orphans.length).toBe(1);

    const report = await recoverLeftovers(base, { logger: quiet });
    expect(report.unmounted.sort()).toEqual(during.map((m) => m.mountPoint).sort());
    expect(report.killed).toEqual(orphans);
    expect(report.policyRemoved).toEqual([path.join(root, 'usr/sbin/policy-rc.d')]);
    expect(await mountsUnder(base)).toEqual([]);
    expect(await waitFor(() => !alive(orphans[0]!), 3000)).toBe(true);
    expect(existsSync(path.join(root, 'usr/sbin/policy-rc.d'))).toBe(false);
    // and a new session works on it again
    expect((await execCollect(root, ['true'])).code).toBe(0);
    // idempotent
    expect(await recoverLeftovers(base, { logger: quiet })).toEqual({ unmounted: [], killed: [], policyRemoved: [] });
  });
});
