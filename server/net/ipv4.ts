/**
 * IPv4 helpers shared by the config, the inventory and the DHCP server. Addresses
 * are handled as dotted strings at the edges and as unsigned 32-bit numbers
 * for arithmetic (pool walks, subnet tests).
 */

export interface Subnet {
  network: string;
  prefix: number;
}

export interface Range {
  start: string;
  end: string;
}

/**
 * A dotted quad as an unsigned 32-bit number, or -1 when it is not one: four
 * groups of 1 to 3 ASCII digits (leading zeros allowed), each <= 255, joined
 * by dots, nothing before or after. A hand loop, not a regular expression:
 * the DHCP server parses several addresses per packet.
 */
function ipv4Int(s: string): number {
  let n = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3) return -1;
      part = part * 10 + (c - 48);
      digits++;
    } else {
      return -1;
    }
    if (part > 255) return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

/** True for a dotted-quad IPv4 address (no leading/trailing junk, octets <= 255). */
export function isIpv4(s: string): boolean {
  return typeof s === 'string' && ipv4Int(s) >= 0;
}

/** The address as a number; throws naming the value refused. */
export function toInt(s: string): number {
  const n = typeof s === 'string' ? ipv4Int(s) : -1;
  if (n < 0) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  return n;
}

/** Parse a dotted quad into its four octets; throws naming the value refused. */
export function parseIpv4(s: string): [number, number, number, number] {
  const n = toInt(s);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

export function fromInt(n: number): string {
  const u = n >>> 0;
  return `${u >>> 24}.${(u >>> 16) & 255}.${(u >>> 8) & 255}.${u & 255}`;
}

export function maskInt(prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad prefix length: ${prefix}`);
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function netmask(prefix: number): string {
  return fromInt(maskInt(prefix));
}

export function networkOf(subnet: Subnet): number {
  return (toInt(subnet.network) & maskInt(subnet.prefix)) >>> 0;
}

export function inSubnet(ip: string, subnet: Subnet): boolean {
  const m = maskInt(subnet.prefix);
  return ((toInt(ip) & m) >>> 0) === networkOf(subnet);
}

/** Directed broadcast address of a subnet (RFC 919/922), option 28. */
export function broadcast(subnet: Subnet): string {
  return fromInt((networkOf(subnet) | (~maskInt(subnet.prefix) >>> 0)) >>> 0);
}

export function inRange(ip: string, range: Range): boolean {
  const n = toInt(ip);
  return n >= toInt(range.start) && n <= toInt(range.end);
}

/** Buffer (4 bytes at offset) -> dotted string. */
export function readIp(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function ipToBuffer(s: string): Buffer {
  return Buffer.from(parseIpv4(s));
}

export const ZERO = '0.0.0.0';
export const LIMITED_BROADCAST = '255.255.255.255';

/** A subnet parsed from `10.77.0.0/24`, with what the config and the inventory check against. */
export interface Cidr extends Subnet {
  text: string;
  mask: string;
  broadcast: string;
  contains(ip: string): boolean;
}

export function parseCidr(text: string): Cidr | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || !isIpv4(m[1]!)) return undefined;
  const prefix = Number(m[2]);
  if (prefix > 32) return undefined;
  const subnet: Subnet = { network: fromInt((toInt(m[1]!) & maskInt(prefix)) >>> 0), prefix };
  return {
    ...subnet,
    text: `${subnet.network}/${prefix}`,
    mask: netmask(prefix),
    broadcast: broadcast(subnet),
    contains: (ip: string) => isIpv4(ip) && inSubnet(ip, subnet),
  };
}
