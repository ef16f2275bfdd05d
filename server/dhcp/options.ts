/**
 * The DHCP option table (RFC 2132 unless noted) and typed readers over the
 * raw options of a decoded packet. Options stay raw in the packet so unknown
 * ones round-trip; only what the server reads is interpreted here.
 */
import { readIp, toInt } from '../net/ipv4.js';
import type { DhcpOption, DhcpPacket } from './packet.js';

export type OptionType =
  | 'ip' | 'ips' | 'u8' | 'u16' | 'u32' | 'string' | 'bytes' | 'u8list' | 'u16list'
  | 'clientId' | 'userClass' | 'encapsulated' | 'uuid';

export interface OptionDef { code: number; name: string; type: OptionType }

export const OPT = {
  subnetMask: 1, router: 3, dns: 6, hostname: 12, domain: 15, broadcast: 28,
  vendorSpecific: 43, requestedIp: 50, leaseTime: 51, overload: 52, messageType: 53,
  serverId: 54, paramList: 55, message: 56, maxMessageSize: 57, t1: 58, t2: 59,
  vendorClass: 60, clientId: 61, tftpServer: 66, bootFile: 67, userClass: 77,
  relayAgent: 82, clientArch: 93, clientNdi: 94, clientUuid: 97, etherboot: 175,
} as const;

export const OPTION_TABLE: readonly OptionDef[] = [
  { code: 1, name: 'subnet-mask', type: 'ip' },
  { code: 3, name: 'router', type: 'ips' },
  { code: 6, name: 'dns-server', type: 'ips' },
  { code: 12, name: 'hostname', type: 'string' },
  { code: 15, name: 'domain-name', type: 'string' },
  { code: 17, name: 'root-path', type: 'string' },
  { code: 28, name: 'broadcast-address', type: 'ip' },
  { code: 43, name: 'vendor-specific', type: 'encapsulated' },
  { code: 50, name: 'requested-ip', type: 'ip' },
  { code: 51, name: 'lease-time', type: 'u32' },
  { code: 52, name: 'overload', type: 'u8' },
  { code: 53, name: 'message-type', type: 'u8' },
  { code: 54, name: 'server-id', type: 'ip' },
  { code: 55, name: 'parameter-request-list', type: 'u8list' },
  { code: 56, name: 'message', type: 'string' },
  { code: 57, name: 'max-message-size', type: 'u16' },
  { code: 58, name: 'renewal-time', type: 'u32' },
  { code: 59, name: 'rebinding-time', type: 'u32' },
  { code: 60, name: 'vendor-class', type: 'string' },
  { code: 61, name: 'client-id', type: 'clientId' },
  { code: 66, name: 'tftp-server', type: 'string' },
  { code: 67, name: 'bootfile-name', type: 'string' },
  { code: 77, name: 'user-class', type: 'userClass' },          // RFC 3004
  { code: 82, name: 'relay-agent-information', type: 'encapsulated' }, // RFC 3046
  { code: 93, name: 'client-arch', type: 'u16list' },           // RFC 4578
  { code: 94, name: 'client-ndi', type: 'bytes' },              // RFC 4578: 3 bytes, not enforced
  { code: 97, name: 'client-uuid', type: 'uuid' },              // RFC 4578
  { code: 175, name: 'etherboot', type: 'encapsulated' },       // iPXE's encapsulated options
];

export const OPTIONS_BY_CODE: ReadonlyMap<number, OptionDef> = new Map(OPTION_TABLE.map((d) => [d.code, d]));

/** Exact or minimum lengths for typed options; decode refuses others (names the field). */
export function lengthProblem(code: number, len: number): string | null {
  const def = OPTIONS_BY_CODE.get(code);
  if (!def) return null;
  switch (def.type) {
    case 'ip': return len === 4 ? null : 'must be 4 bytes';
    case 'ips': return len >= 4 && len % 4 === 0 ? null : 'must be a non-empty multiple of 4 bytes';
    case 'u8': return len === 1 ? null : 'must be 1 byte';
    case 'u16': return len === 2 ? null : 'must be 2 bytes';
    case 'u32': return len === 4 ? null : 'must be 4 bytes';
    case 'u16list': return len >= 2 && len % 2 === 0 ? null : 'must be a non-empty multiple of 2 bytes';
    case 'clientId': return len >= 2 ? null : 'must be at least 2 bytes'; // RFC 2132 9.14
    default: return null;
  }
}

export const MessageType = {
  DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8,
} as const;
const TYPE_NAMES = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];

export function messageTypeName(t: number | undefined): string {
  return t !== undefined && TYPE_NAMES[t] ? TYPE_NAMES[t]! : t === undefined ? 'BOOTP' : `type-${t}`;
}

/**
 * The value of an option; repeated instances are concatenated (RFC 3396
 * long options), which is also how a client may split option 55 or 77.
 */
export function getOption(p: DhcpPacket, code: number): Buffer | undefined {
  const parts = p.options.filter((o) => o.code === code).map((o) => o.data);
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

export function hasOption(p: DhcpPacket, code: number): boolean {
  return p.options.some((o) => o.code === code);
}

export function getU8(p: DhcpPacket, code: number): number | undefined {
  const b = getOption(p, code);
  return b && b.length >= 1 ? b[0] : undefined;
}

export function getU16(p: DhcpPacket, code: number): number | undefined {
  const b = getOption(p, code);
  return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
}

export function getU32(p: DhcpPacket, code: number): number | undefined {
  const b = getOption(p, code);
  return b && b.length >= 4 ? b.readUInt32BE(0) : undefined;
}

export function getIp(p: DhcpPacket, code: number): string | undefined {
  const b = getOption(p, code);
  return b && b.length >= 4 ? readIp(b) : undefined;
}

export function getString(p: DhcpPacket, code: number): string | undefined {
  const b = getOption(p, code);
  if (!b) return undefined;
  // RFC 2132 3.x: strings are not NUL-terminated, but some clients add one.
  const nul = b.indexOf(0);
  return (nul >= 0 ? b.subarray(0, nul) : b).toString('latin1');
}

export function messageType(p: DhcpPacket): number | undefined {
  return getU8(p, OPT.messageType);
}

export function paramList(p: DhcpPacket): number[] {
  return [...(getOption(p, OPT.paramList) ?? [])];
}

/** First architecture type of option 93 (RFC 4578 2.1 allows a list; the first is the one booting). */
export function clientArchCode(p: DhcpPacket): number | undefined {
  return getU16(p, OPT.clientArch);
}

/**
 * Option 77 as a list of class strings. RFC 3004 encodes each class as
 * length + data, but iPXE sends the raw bytes `iPXE` (seen in the captures):
 * accept both, the raw form when the length prefixes do not tile the value.
 */
export function userClasses(p: DhcpPacket): string[] {
  const b = getOption(p, OPT.userClass);
  if (!b || b.length === 0) return [];
  const out: string[] = [];
  let i = 0;
  while (i < b.length) {
    const len = b[i]!;
    if (len === 0 || i + 1 + len > b.length) return [b.toString('latin1')];
    out.push(b.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return out;
}

/** Sub-options of an encapsulated option (43, 82, 175): code/len/value, 0 pad, 255 end. */
export function subOptions(data: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < data.length) {
    const code = data[i]!;
    if (code === 0) { i++; continue; }
    if (code === 255) break;
    if (i + 1 >= data.length) break;
    const len = data[i + 1]!;
    if (i + 2 + len > data.length) break;
    out.set(code, data.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}

export function encodeSubOptions(subs: Array<[number, Buffer]>): Buffer {
  return Buffer.concat(subs.map(([c, v]) => Buffer.concat([Buffer.from([c, v.length]), v])));
}

/** The client runs iPXE: option 77 says `iPXE` or it sent option 175 (iPXE's own space). */
export function isIpxe(p: DhcpPacket): boolean {
  return userClasses(p).includes('iPXE') || hasOption(p, OPT.etherboot);
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Normalised MAC `aa:bb:cc:dd:ee:ff` from chaddr/hlen. */
export function macOf(p: DhcpPacket): string {
  const n = Math.min(p.hlen, 16, p.chaddr.length);
  let out = n > 0 ? HEX[p.chaddr[0]!]! : '';
  for (let i = 1; i < n; i++) out += ':' + HEX[p.chaddr[i]!]!;
  return out;
}

// Encoders for reply options.
export function opt(code: number, data: Buffer): DhcpOption { return { code, data }; }
export function optU8(code: number, v: number): DhcpOption { return opt(code, Buffer.from([v & 255])); }
export function optU16(code: number, v: number): DhcpOption { const b = Buffer.alloc(2); b.writeUInt16BE(v); return opt(code, b); }
export function optU32(code: number, v: number): DhcpOption { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return opt(code, b); }
export function optString(code: number, s: string): DhcpOption { return opt(code, Buffer.from(s, 'latin1')); }
export function optIps(code: number, ips: string[]): DhcpOption {
  const data = Buffer.allocUnsafe(4 * ips.length);
  ips.forEach((ip, i) => data.writeUInt32BE(toInt(ip), 4 * i));
  return opt(code, data);
}
