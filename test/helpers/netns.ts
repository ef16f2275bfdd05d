/**
 * Network namespaces for tests: every server and client a test starts lives
 * in namespaces the test made here, never on the host's interfaces. Each
 * namespace name carries a per-process tag so parallel test files never
 * collide, and `destroyAll()` (registered by the caller in afterAll) removes
 * whatever this process created, even after a failure.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';

const created = new Set<string>();
const tag = randomBytes(2).toString('hex');

export function nsName(role: string): string {
  // ip-netns names are free-form but interface names are limited to 15 bytes;
  // keep both short and recognisable.
  return `sid${tag}${role}`.slice(0, 15);
}

export async function ip(...args: string[]): Promise<string> {
  const r = await execa('ip', args);
  return r.stdout;
}

export async function createNs(role: string): Promise<string> {
  const name = nsName(role);
  await execa('ip', ['netns', 'del', name], { reject: false });
  await execa('ip', ['netns', 'add', name]);
  created.add(name);
  await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Run a command inside a namespace and wait for it. */
export async function nsExec(ns: string, cmd: string, args: string[], opts: Options = {}) {
  return execa('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Start a long-running command inside a namespace; the caller kills it by PID. */
export function nsSpawn(ns: string, cmd: string, args: string[], opts: Options = {}): ResultPromise {
  return execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, ...opts });
}

/**
 * A veth pair between two namespaces, with an address on each side.
 * Returns the interface names (left in `a`, right in `b`).
 */
export async function linkNamespaces(
  a: string, aAddr: string | null, b: string, bAddr: string | null, suffix = '0',
): Promise<{ aIf: string; bIf: string }> {
  const aIf = `va${tag}${suffix}`.slice(0, 15);
  const bIf = `vb${tag}${suffix}`.slice(0, 15);
  await execa('ip', ['link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', bIf, 'netns', b]);
  for (const [ns, ifn, addr] of [[a, aIf, aAddr], [b, bIf, bAddr]] as const) {
    if (addr) await execa('ip', ['-n', ns, 'addr', 'add', addr, 'dev', ifn]);
    await execa('ip', ['-n', ns, 'link', 'set', ifn, 'up']);
  }
  return { aIf, bIf };
}

export async function destroyNs(name: string): Promise<void> {
  await execa('ip', ['netns', 'del', name], { reject: false });
  created.delete(name);
}

export async function destroyAll(): Promise<void> {
  for (const name of [...created]) await destroyNs(name);
}

/**
 * True when this process may create namespaces (root with CAP_NET_ADMIN).
 * A developer without root sees those tests skipped; CI must run them, so
 * there the lack of privilege is an error, not a skip.
 */
export async function canUseNetns(): Promise<boolean> {
  const probe = `sid${tag}probe`;
  const r = await execa('ip', ['netns', 'add', probe], { reject: false });
  if (r.exitCode !== 0) {
    if (process.env.CI) throw new Error(`CI must run the namespace tests as root: ip netns add failed: ${r.stderr}`);
    return false;
  }
  await execa('ip', ['netns', 'del', probe], { reject: false });
  return true;
}
