/** The dotted-quad parser every service uses (a hand loop since issue 6: it runs several times per DHCP packet). */
import { describe, expect, it } from 'vitest';
import { fromInt, inSubnet, isIpv4, parseIpv4, toInt } from '../../server/net/ipv4.js';

describe('IPv4 parsing', () => {
  it.each([
    ['0.0.0.0', 0], ['255.255.255.255', 0xffffffff], ['10.77.0.1', 0x0a4d0001], ['192.168.1.254', 0xc0a801fe],
    ['010.001.000.009', 0x0a010009], // leading zeros: decimal, as before
  ])('%s -> %i', (s, n) => {
    expect(isIpv4(s)).toBe(true);
    expect(toInt(s)).toBe(n);
    expect(fromInt(toInt(s))).toBe(s.split('.').map(Number).join('.'));
    expect(parseIpv4(s)).toEqual(s.split('.').map(Number));
  });

  it.each([
    '', '1', '1.2.3', '1.2.3.4.', '.1.2.3', '1..2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '1.2.3.1234', '1.2.3.0004',
    ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n', '1.2.3.+4', '1.2.3.-4', '1.2.3.4/24', 'a.b.c.d', '1.2.3.٤', '１.2.3.4', '0x1.2.3.4',
  ])('refuses %j, naming it', (s) => {
    expect(isIpv4(s)).toBe(false);
    expect(() => toInt(s)).toThrow(`not an IPv4 address: ${JSON.stringify(s)}`);
    expect(() => parseIpv4(s)).toThrow('not an IPv4 address');
  });

  it('refuses what is not a string', () => {
    for (const v of [undefined, null, 1234, ['1.2.3.4']]) {
      expect(isIpv4(v as unknown as string)).toBe(false);
      expect(() => toInt(v as unknown as string)).toThrow('not an IPv4 address');
    }
  });

  it('subnet tests use the same numbers', () => {
    expect(inSubnet('10.90.255.250', { network: '10.90.0.0', prefix: 16 })).toBe(true);
    expect(inSubnet('10.91.0.1', { network: '10.90.0.0', prefix: 16 })).toBe(false);
    expect(inSubnet('203.0.113.9', { network: '0.0.0.0', prefix: 0 })).toBe(true);
  });
});
