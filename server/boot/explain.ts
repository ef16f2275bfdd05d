/**
 * `explain`: what a machine would get, computed by the very code that
 * answers on the wire. A DHCPDISCOVER is built the way the firmware of that
 * architecture sends it (see shared/captures) and run through the DHCP
 * handler; the menu or iPXE script comes from the same renderers the TFTP
 * and HTTP servers call. Nothing is written: the handler keeps offers in
 * memory only, and the backend used here records no event.
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import { DhcpHandler } from '../dhcp/handler.js';
import { MessageType, OPT } from '../dhcp/options.js';
import type { DhcpPacket } from '../dhcp/packet.js';
import { dhcpPolicy, InventoryDhcpBackend } from '../daemon/backend.js';
import { planFor, type BootPlan } from './decide.js';
import { serveBootPath, ipxeScriptFor } from './files.js';
import { pxelinuxMacName } from '../inventory/mac.js';

export type ExplainArch = 'bios' | 'efi32' | 'efi64' | 'http' | 'ipxe';
export const EXPLAIN_ARCHES: ExplainArch[] = ['bios', 'efi32', 'efi64', 'http', 'ipxe'];

const ARCH_CODE: Record<ExplainArch, number> = { bios: 0, efi32: 6, efi64: 7, http: 16, ipxe: 0 };

export interface Explanation {
  mac: string;
  arch: ExplainArch;
  plan: Pick<BootPlan, 'known' | 'hostname' | 'root' | 'bootMode' | 'loader'>;
  dhcp: { outcome: string; reason?: string; yiaddr?: string; siaddr?: string; file?: string; options: Record<string, string> } ;
  /** The file the loader fetches next and its content as served. */
  next?: { path: string; content: string };
}

function discoverFor(mac: string, arch: ExplainArch): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  const code = ARCH_CODE[arch];
  const vendor = arch === 'http' ? 'HTTPClient:Arch:00016:UNDI:003001' : `PXEClient:Arch:${String(code).padStart(5, '0')}:UNDI:002001`;
  const options: DhcpPacket['options'] = [
    { code: OPT.messageType, data: Buffer.from([MessageType.DISCOVER]) },
    { code: OPT.clientArch, data: Buffer.from([code >> 8, code & 255]) },
    { code: OPT.vendorClass, data: Buffer.from(vendor) },
  ];
  // iPXE sends option 77 as the raw bytes "iPXE" and option 175 (seen in the captures).
  if (arch === 'ipxe') options.push({ code: OPT.userClass, data: Buffer.from('iPXE') }, { code: OPT.etherboot, data: Buffer.from([0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e]) });
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x5151eeee, secs: 0, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options,
  };
}

function printable(code: number, data: Buffer): string {
  if ([1, 3, 6, 28, 54].includes(code)) {
    const ips: string[] = [];
    for (let i = 0; i + 4 <= data.length; i += 4) ips.push([...data.subarray(i, i + 4)].join('.'));
    return ips.join(', ');
  }
  if ([51, 58, 59].includes(code) && data.length === 4) return `${data.readUInt32BE(0)} s`;
  if (code === 53) return String(data[0]);
  return /^[\x20-\x7e]*$/.test(data.toString('latin1')) ? data.toString('latin1') : data.toString('hex');
}

export function explain(inv: Inventory, config: SiderealConfig, mac: string, arch: ExplainArch): Explanation {
  const handler = new DhcpHandler({ ...dhcpPolicy(config), backend: new InventoryDhcpBackend(inv, config, { recordEvents: false }) });
  const out = handler.handleDetailed(discoverFor(mac, arch), { receivedOn: 'interface', now: Date.now() });
  const plan = planFor(inv, config, mac);
  const result: Explanation = {
    mac, arch,
    plan: { known: plan.known, hostname: plan.hostname, root: plan.root, bootMode: plan.bootMode, loader: plan.loader },
    dhcp: { outcome: out.log.outcome, reason: out.log.reason, options: {} },
  };
  const reply = out.result?.reply;
  if (!reply) return result;
  Object.assign(result.dhcp, { yiaddr: reply.yiaddr, siaddr: reply.siaddr, file: reply.file });
  for (const o of reply.options) result.dhcp.options[String(o.code)] = printable(o.code, o.data);
  const file = reply.file;
  if (/\/boot\/[^/]+\.ipxe$/.test(file)) {
    const served = ipxeScriptFor(inv, config, mac);
    if (served.kind === 'virtual') result.next = { path: file, content: served.content.toString() };
  } else if (!/^https?:/.test(file)) {
    // What pxelinux/syslinux.efi asks after loading: its per-MAC menu, under the loader's directory.
    const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
    for (const name of [pxelinuxMacName(mac), 'default']) {
      const served = serveBootPath(inv, config, `${dir}pxelinux.cfg/${name}`);
      if (served.kind === 'virtual') {
        result.next = { path: `${dir}pxelinux.cfg/${name}`, content: served.content.toString() };
        break;
      }
    }
  }
  return result;
}
