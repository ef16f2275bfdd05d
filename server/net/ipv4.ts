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

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** True for a dotted-quad IPv4 address (no leading/trailing junk, octets <= 255). */
export function isIpv4(s: string): boolean {
  const m = DOTTED.exec(s);
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

/** Parse a dotted quad into its four octets; throws naming the value refused. */
export function parseIpv4(s: string): [number, number, number, number] {
  const m = DOTTED.exec(s);
  if (!m) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  const o = m.slice(1).map(Number) as [number, number, number, number];
  if (o.some((x) => x > 255)) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  return o;
}

export function toInt(s: string): number {
  const [a, b, c, d] = parseIpv4(s);
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
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
