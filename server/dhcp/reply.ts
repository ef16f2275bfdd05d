/**
 * Building replies: header fields per RFC 2131 table 3, the option list
 * (RFC 2132, RFC 4578 for PXE, iPXE's option 175) and where the reply goes
 * (RFC 2131 4.1).
 */
import type { DhcpBootAnswer } from '../boot/types.js';
import { broadcast, LIMITED_BROADCAST, netmask, ZERO } from '../net/ipv4.js';
import {
  getOption, getString, getU16, isIpxe, MessageType, OPT, opt, optIps, optString, optU32, optU8, paramList,
} from './options.js';
import { BROADCAST_FLAG, encodedLength, type DhcpOption, type DhcpPacket } from './packet.js';
import type { ServedSubnet } from './leases.js';

export interface ReplyConfig {
  serverId: string;
  leaseTime: number;
  dns?: string[];
  domain?: string;
  clientPort: number;
}

export interface ReplyInput {
  type: typeof MessageType.OFFER | typeof MessageType.ACK | typeof MessageType.NAK;
  /** yiaddr; absent for NAK and for the ACK to an INFORM. */
  ip?: string;
  /** ACK to DHCPINFORM (RFC 2131 4.3.5): no yiaddr, no lease time. */
  inform?: boolean;
  sub?: ServedSubnet;
  hostname?: string | null;
  boot?: DhcpBootAnswer;
  /** NAK: option 56 text. */
  message?: string;
}

/** The DHCP message must fit the client's buffer: option 57 counts the IP and UDP headers (RFC 2132 9.10). */
const IP_UDP_HEADERS = 28;
const MIN_MAX_MESSAGE = 576;
const BOOT_FILE_FIELD_MAX = 127;

/** iPXE option 175.176 `no-pxedhcp` = 1: do not wait for ProxyDHCP offers (iPXE's 3 s delay). */
const IPXE_NO_PXEDHCP = Buffer.from([176, 1, 1]);

export function buildReply(req: DhcpPacket, input: ReplyInput, cfg: ReplyConfig): DhcpPacket {
  const nak = input.type === MessageType.NAK;
  const giaddr = req.giaddr;
  // RFC 2131 4.3.2: a NAK through a relay carries the broadcast bit so the relay broadcasts it.
  const flags = nak && giaddr !== ZERO ? req.flags | BROADCAST_FLAG : req.flags;
  const bootFile = input.boot?.bootFile ?? '';
  const reply: DhcpPacket = {
    op: 2, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags,
    // Table 3: ciaddr is echoed in ACKs only (renewing/rebinding/inform), 0 in OFFER/NAK.
    ciaddr: input.type === MessageType.ACK ? req.ciaddr : ZERO,
    yiaddr: !nak && !input.inform && input.ip ? input.ip : ZERO,
    siaddr: !nak && input.boot ? input.boot.nextServer : ZERO,
    giaddr,
    chaddr: Buffer.from(req.chaddr),
    sname: '',
    // A URL longer than the 128-byte field goes in option 67 only.
    file: !nak && Buffer.byteLength(bootFile, 'latin1') <= BOOT_FILE_FIELD_MAX ? bootFile : '',
    options: nak ? nakOptions(req, input, cfg) : replyOptions(req, input, cfg),
  };
  return fitToClient(req, reply);
}

function nakOptions(req: DhcpPacket, input: ReplyInput, cfg: ReplyConfig): DhcpOption[] {
  const out = [optU8(OPT.messageType, MessageType.NAK), optIps(OPT.serverId, [cfg.serverId])];
  if (input.message) out.push(optString(OPT.message, input.message));
  const relay = relayAgentEcho(req);
  if (relay) out.push(relay);
  return out;
}

/** Relay agent sub-options whose length their RFC fixes: 4 DOCSIS device class (RFC 3256), 5 link selection (RFC 3527), 10 flags (RFC 5010), 11 server identifier override (RFC 5107). */
const RELAY_SUBOPTION_SIZE = new Map([[4, 4], [5, 4], [10, 1], [11, 4]]);

/**
 * RFC 3046 2.2: the relay agent information a relay added is echoed, as it
 * came. Only a relayed request (giaddr set) carries a relay's option 82, and
 * a relay writes whole sub-options, a circuit or remote ID of at least one
 * byte (RFC 3046 2.1), the others of their size where their RFC fixes one: an option 82 from a client on
 * the segment, or one that breaks those rules, was not written by a
 * conforming relay and is not sent back (echoing it would put a malformed
 * option in our reply; the fuzzer's tshark check found both).
 */
export function relayAgentEcho(req: DhcpPacket): DhcpOption | undefined {
  if (req.giaddr === ZERO) return undefined;
  const data = getOption(req, OPT.relayAgent);
  if (!data || data.length === 0) return undefined;
  for (let i = 0; i < data.length; i += 2 + data[i + 1]!) {
    if (i + 1 >= data.length) return undefined;
    const code = data[i]!;
    const len = data[i + 1]!;
    if (i + 2 + len > data.length || (len === 0 && (code === 1 || code === 2))) return undefined;
    const size = RELAY_SUBOPTION_SIZE.get(code);
    if (size !== undefined && len !== size) return undefined;
  }
  return opt(OPT.relayAgent, data);
}

/** Options the client always gets whatever option 55 says (PXE ROMs often omit 66/67 from 55). */
const ALWAYS = new Set<number>([
  OPT.messageType, OPT.serverId, OPT.leaseTime, OPT.t1, OPT.t2, OPT.subnetMask,
  OPT.vendorClass, OPT.vendorSpecific, OPT.tftpServer, OPT.bootFile, OPT.clientUuid, OPT.etherboot, OPT.relayAgent,
]);

/** Option 43 for PXE clients: sub-option 6 (discovery control), length 1, value 8; then End. */
const PXE_USE_BOOTFILE = Buffer.from([6, 1, 8, 255]);

/**
 * Options fixed by the config (server id, lease times, DNS, domain) and by
 * the served subnet (mask, router, broadcast): encoded once, shared by every
 * reply (nothing writes into an option's bytes once built).
 */
interface FixedOptions { serverId: DhcpOption; lease: DhcpOption[]; dns?: DhcpOption; domain?: DhcpOption }
const fixedByConfig = new WeakMap<ReplyConfig, FixedOptions>();
const bySubnet = new WeakMap<ServedSubnet, { mask: DhcpOption; router?: DhcpOption; broadcast: DhcpOption }>();
const MESSAGE_TYPES = new Map<number, DhcpOption>();

function fixedOptions(cfg: ReplyConfig): FixedOptions {
  let f = fixedByConfig.get(cfg);
  if (!f) {
    f = {
      serverId: optIps(OPT.serverId, [cfg.serverId]),
      // RFC 2131 4.4.5: T1 = 0.5 and T2 = 0.875 of the lease.
      lease: [optU32(OPT.leaseTime, cfg.leaseTime), optU32(OPT.t1, Math.floor(cfg.leaseTime * 0.5)), optU32(OPT.t2, Math.floor(cfg.leaseTime * 0.875))],
    };
    if (cfg.dns && cfg.dns.length > 0) f.dns = optIps(OPT.dns, cfg.dns);
    if (cfg.domain) f.domain = optString(OPT.domain, cfg.domain);
    fixedByConfig.set(cfg, f);
  }
  return f;
}

function subnetOptions(sub: ServedSubnet) {
  let o = bySubnet.get(sub);
  if (!o) {
    o = { mask: optIps(OPT.subnetMask, [netmask(sub.subnet.prefix)]), broadcast: optIps(OPT.broadcast, [broadcast(sub.subnet)]) };
    if (sub.router) o.router = optIps(OPT.router, [sub.router]);
    bySubnet.set(sub, o);
  }
  return o;
}

function messageTypeOption(type: number): DhcpOption {
  let o = MESSAGE_TYPES.get(type);
  if (!o) MESSAGE_TYPES.set(type, (o = optU8(OPT.messageType, type)));
  return o;
}

function replyOptions(req: DhcpPacket, input: ReplyInput, cfg: ReplyConfig): DhcpOption[] {
  const fixed = fixedOptions(cfg);
  const head: DhcpOption[] = [messageTypeOption(input.type), fixed.serverId];
  if (!input.inform) head.push(...fixed.lease);

  const avail = new Map<number, DhcpOption>();
  const sub = input.sub ? subnetOptions(input.sub) : undefined;
  if (sub) {
    avail.set(OPT.subnetMask, sub.mask);
    if (sub.router) avail.set(OPT.router, sub.router);
  }
  if (fixed.dns) avail.set(OPT.dns, fixed.dns);
  if (input.hostname) avail.set(OPT.hostname, optString(OPT.hostname, input.hostname));
  if (fixed.domain) avail.set(OPT.domain, fixed.domain);
  if (sub) avail.set(OPT.broadcast, sub.broadcast);

  const boot = input.boot;
  if (boot) {
    // PXE spec 2.1 / UEFI 2.x HTTP boot: echo the class family the client announced.
    const vc = getString(req, OPT.vendorClass);
    if (vc && (vc.startsWith('PXEClient') || vc.startsWith('HTTPClient'))) {
      avail.set(OPT.vendorClass, optString(OPT.vendorClass, boot.vendorClass));
      // PXE 2.1 spec 2.2.5: an offer with 60 "PXEClient" and no option 43 tells the client to
      // look for a boot server (proxyDHCP on port 4011); OVMF then never fetches the boot file
      // (seen in the lab). Sub-option 6 (PXE_DISCOVERY_CONTROL) = 8: use the boot file in this
      // offer, as ISC dhcpd setups do.
      if (boot.vendorClass === 'PXEClient') avail.set(OPT.vendorSpecific, opt(OPT.vendorSpecific, PXE_USE_BOOTFILE));
    }
    avail.set(OPT.tftpServer, optString(OPT.tftpServer, boot.nextServer));
    avail.set(OPT.bootFile, optString(OPT.bootFile, boot.bootFile));
  }
  // RFC 4578 2.3: a PXE client that sends 97 expects it back (OVMF asks for it).
  const uuid = getOption(req, OPT.clientUuid);
  if (uuid) avail.set(OPT.clientUuid, opt(OPT.clientUuid, uuid));
  if (isIpxe(req)) avail.set(OPT.etherboot, opt(OPT.etherboot, IPXE_NO_PXEDHCP));

  // Option 55 order is a hint (RFC 2131 4.3.1 "SHOULD"); what it does not name follows.
  const ordered: DhcpOption[] = [];
  for (const code of paramList(req)) {
    const o = avail.get(code);
    if (o) { ordered.push(o); avail.delete(code); }
  }
  ordered.push(...avail.values());
  // RFC 3046 2.2: the relay agent option is echoed, last.
  const relay = relayAgentEcho(req);
  if (relay) ordered.push(relay);
  return [...head, ...ordered];
}

/** Drop optional options, last first, until the reply fits the client's option 57 (RFC 2132 9.10). */
function fitToClient(req: DhcpPacket, reply: DhcpPacket): DhcpPacket {
  const max = Math.max(MIN_MAX_MESSAGE, getU16(req, OPT.maxMessageSize) ?? MIN_MAX_MESSAGE) - IP_UDP_HEADERS;
  const options = [...reply.options];
  while (encodedLength({ ...reply, options }) > max) {
    let i = options.length - 1;
    while (i >= 0 && ALWAYS.has(options[i]!.code)) i--;
    if (i < 0) break;
    options.splice(i, 1);
  }
  return { ...reply, options };
}

/** RFC 2131 4.1, "the server sends to ...". Node cannot inject ARP entries, so no unicast to yiaddr. */
export function replyDestination(req: DhcpPacket, nak: boolean, clientPort: number): { address: string; port: number } {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: 67 };
  if (nak) return { address: LIMITED_BROADCAST, port: clientPort };
  if (req.ciaddr !== ZERO) return { address: req.ciaddr, port: clientPort };
  return { address: LIMITED_BROADCAST, port: clientPort };
}
