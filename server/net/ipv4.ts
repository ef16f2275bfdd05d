/** IPv4 arithmetic shared by the config, the DHCP server and the inventory. */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  text: string;
  network: string;
  prefix: number;
  mask: string;
  broadcast: string;
  contains(ip: string): boolean;
}

export function parseCidr(text: string): Cidr | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || !isIpv4(m[1]!)) return undefined;
  const prefix = Number(m[2]);
  if (prefix < 0 || prefix > 32) return undefined;
  const maskInt = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (ipToInt(m[1]!) & maskInt) >>> 0;
  const bcast = (net | (~maskInt >>> 0)) >>> 0;
  return {
    text: `${intToIp(net)}/${prefix}`,
    network: intToIp(net),
    prefix,
    mask: intToIp(maskInt),
    broadcast: intToIp(bcast),
    contains(ip: string) {
      return isIpv4(ip) && ((ipToInt(ip) & maskInt) >>> 0) === net;
    },
  };
}
