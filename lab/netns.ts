/**
 * Network namespaces for the lab: every server and VM the lab starts lives in
 * a namespace made here, never on the host's interfaces. Names carry a
 * per-process tag (as test/helpers/netns.ts does) so two labs, or a lab and a
 * test run, never collide; `destroyAllNamespaces()` removes whatever this
 * process created. A process killed before it could (kill -9, a CI job cut
 * off) leaves its namespaces: each one has an owner file naming the process
 * that made it, and the first namespace a later process makes removes those
 * whose owner is gone and that nothing runs in.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownerAlive, ownerToken } from '../server/roots/owner.js';
import { track } from './proc.js';

const created = new Set<string>();
const tag = randomBytes(2).toString('hex');
/** Who made each `sid*` namespace: `<pid>:<start time>` (server/roots/owner.ts). */
const OWNERS = '/run/sidereal-netns';
let reaped = false;

/** Remove the `sid*` namespaces a dead process left (its owner file names a process gone, and nothing runs inside). */
async function reapLeftovers(): Promise<void> {
  reaped = true;
  let names: string[];
  try { names = readdirSync('/run/netns').filter((n) => n.startsWith('sid')); } catch { return; }
  for (const name of names) {
    let owner: string;
    try { owner = readFileSync(join(OWNERS, name), 'utf8').trim(); } catch { continue; /* not ours to judge: made by hand, or before owner files */ }
    if (ownerAlive(owner)) continue;
    const pids = await execa('ip', ['netns', 'pids', name], { reject: false });
    if (pids.exitCode !== 0 || String(pids.stdout).trim() !== '') continue;
    await execa('ip', ['netns', 'del', name], { reject: false });
    rmSync(join(OWNERS, name), { force: true });
  }
  // Owner files of namespaces removed some other way (`ip netns del` by hand).
  let owners: string[] = [];
  try { owners = readdirSync(OWNERS); } catch { /* none yet */ }
  for (const name of owners) if (!names.includes(name)) rmSync(join(OWNERS, name), { force: true });
}

/** `sid<tag><role>`, at most 15 bytes. */
export function labNsName(role: string): string {
  return `sid${tag}${role}`.slice(0, 15);
}

export async function createNamespace(role: string): Promise<string> {
  if (!reaped) await reapLeftovers();
  const name = labNsName(role);
  // The owner file first: a namespace is never there without one naming a live process.
  mkdirSync(OWNERS, { recursive: true });
  writeFileSync(join(OWNERS, name), `${ownerToken()}\n`);
  await execa('ip', ['netns', 'del', name], { reject: false });
  await execa('ip', ['netns', 'add', name]);
  created.add(name);
  await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export async function destroyNamespace(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
  rmSync(join(OWNERS, name), { force: true });
  created.delete(name);
}

export async function destroyAllNamespaces(): Promise<void> {
  for (const name of [...created]) await destroyNamespace(name);
}

/** Run `ip -n NS ...` and return stdout. */
export async function ipIn(ns: string, ...args: string[]): Promise<string> {
  const r = await execa('ip', ['-n', ns, ...args]);
  return r.stdout;
}

/** Run a command inside a namespace and wait for it. */
export async function nsRun(ns: string, cmd: string, args: string[], opts: Options = {}) {
  return execa('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/**
 * Start a long-running command inside a namespace. The returned process's
 * PID is `ip netns exec`'s, which execs the command, so it is the command's
 * own PID: the caller stops it by that PID.
 */
export function nsStart(ns: string, cmd: string, args: string[], opts: Options = {}): ResultPromise {
  return track(execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, ...opts }));
}

/** True when this process may create namespaces (root with CAP_NET_ADMIN). */
export async function canCreateNamespaces(): Promise<boolean> {
  const probe = `sid${tag}probe`;
  const r = await execa('ip', ['netns', 'add', probe], { reject: false });
  if (r.exitCode !== 0) return false;
  await execa('ip', ['netns', 'del', probe], { reject: false });
  return true;
}
