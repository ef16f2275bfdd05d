/**
 * The lab's isolated segment: one network namespace holding a bridge with the
 * server's address and `taps` tap devices enslaved to it, one per VM. QEMU
 * runs inside the same namespace (`ip netns exec`) and opens its tap by name.
 * Nothing here touches the host's interfaces.
 */
import { execa } from 'execa';
import { createNamespace, destroyNamespace, ipIn, nsStart } from './netns.js';
import { stopChild } from './proc.js';
import type { ResultPromise } from 'execa';

export interface LabNetworkOptions {
  subnet?: string;
  serverIp?: string;
  taps?: number;
  /** Namespace role suffix (default `lab`). */
  role?: string;
  /**
   * Send IPv6 router advertisements on the bridge (dnsmasq, RA only, no
   * DHCPv4) so iPXE's IPv6 autoconfiguration ends at once instead of timing
   * out (~13 s on a segment without a router). Default true.
   */
  routerAdvert?: boolean;
  /** The ULA prefix the RA announces (`/64`). */
  ipv6Prefix?: string;
}

export interface LabNetwork {
  ns: string;
  bridge: string;
  taps: string[];
  serverIp: string;
  subnet: string;
  /** Stop the RA sender and delete the namespace (and with it the bridge and taps). */
  destroy(): Promise<void>;
}

export const LAB_BRIDGE = 'br0';

export async function createLabNetwork(opts: LabNetworkOptions = {}): Promise<LabNetwork> {
  const subnet = opts.subnet ?? '10.77.0.0/24';
  const serverIp = opts.serverIp ?? '10.77.0.1';
  const n = opts.taps ?? 1;
  const prefixLen = subnet.split('/')[1] ?? '24';
  const ns = await createNamespace(opts.role ?? 'lab');
  let ra: ResultPromise | undefined;
  const destroy = async () => {
    await stopChild(ra);
    ra = undefined;
    await destroyNamespace(ns);
  };
  try {
    const br = LAB_BRIDGE;
    // No STP and no forward delay: a port forwards as soon as it is up, so the
    // firmware's first DHCP packet is not lost.
    await ipIn(ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await ipIn(ns, 'addr', 'add', `${serverIp}/${prefixLen}`, 'dev', br);
    await ipIn(ns, 'link', 'set', br, 'up');
    const taps: string[] = [];
    for (let i = 0; i < n; i++) {
      const tap = `tap${i}`;
      await ipIn(ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
      await ipIn(ns, 'link', 'set', tap, 'master', br);
      await ipIn(ns, 'link', 'set', tap, 'up');
      taps.push(tap);
    }
    if (opts.routerAdvert ?? true) {
      ra = (await startRouterAdvert(ns, br, opts.ipv6Prefix ?? 'fd77::'))?.child;
    }
    return { ns, bridge: br, taps, serverIp, subnet, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/**
 * A dnsmasq that only sends router advertisements (no DNS: port 0; no
 * DHCPv4: no v4 range), so it coexists with whichever DHCPv4 server the lab
 * runs. The prefix is announced for SLAAC with neither M nor O set.
 */
async function startRouterAdvert(ns: string, br: string, prefix: string): Promise<{ child: ResultPromise } | undefined> {
  const which = await execa('sh', ['-c', 'command -v dnsmasq'], { reject: false });
  if (which.exitCode !== 0) return undefined; // best effort: without it iPXE just waits for its IPv6 timeout
  // DAD off on the bridge so the address is usable (and RAs go out) at once.
  await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${br}.accept_dad=0`], { reject: false });
  await ipIn(ns, 'addr', 'add', `${prefix}1/64`, 'dev', br, 'nodad');
  const child = nsStart(ns, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${br}`, '--bind-interfaces',
    '--enable-ra', `--dhcp-range=${prefix},ra-only,64,1h`, `--ra-param=${br},10,0`,
    '--pid-file=', '--dhcp-leasefile=/dev/null', '--log-facility=-',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Returned inside an object: the child is itself a promise and must not be awaited here.
  return { child };
}
