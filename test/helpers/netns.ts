/**
 * Network namespaces for tests, on top of the lab's (lab/netns.ts): every
 * server and client a test starts lives in namespaces the test made, never
 * on the host's interfaces; `destroyAll()` (in afterAll) removes whatever
 * this process created, even after a failure.
 */
import { execa } from 'execa';
import {
  labNsName, createNamespace, destroyNamespace, destroyAllNamespaces, nsRun, nsStart, canCreateNamespaces,
} from '../../lab/netns.js';

export const nsName = labNsName;
export const createNs = createNamespace;
export const destroyNs = destroyNamespace;
export const destroyAll = destroyAllNamespaces;
/** Run a command inside a namespace and wait for it. */
export const nsExec = nsRun;
/** Start a long-running command inside a namespace; the caller stops it by PID. */
export const nsSpawn = nsStart;

const tag = labNsName('').slice('sid'.length);

export async function ip(...args: string[]): Promise<string> {
  return (await execa('ip', args)).stdout;
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

/**
 * True when this process may create namespaces (root with CAP_NET_ADMIN).
 * A developer without root sees those tests skipped; CI must run them, so
 * there the lack of privilege is an error, not a skip.
 */
export async function canUseNetns(): Promise<boolean> {
  const ok = await canCreateNamespaces();
  if (!ok && process.env.CI) throw new Error('CI must run the namespace tests as root: ip netns add failed');
  return ok;
}
