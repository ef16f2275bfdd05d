/**
 * /etc/ethers (ethers(5)): `MAC hostname-or-IP` per line, `#` comments. The
 * second field is an address when it reads as one (dnsmasq's read-ethers
 * accepts both), else a host name. MACs may be written `8:0:20:1:2:3`.
 */
import type { ImportRecord, ParseResult } from './types.js';
import { padMac } from './types.js';
import { isIpv4 } from '../net/ipv4.js';

export function parseEthers(input: string): ParseResult {
  const out: ParseResult = { records: [], problems: [] };
  input.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) {
      out.problems.push({ line: i + 1, message: `expected "MAC hostname-or-address", got ${fields.length} field${fields.length === 1 ? '' : 's'}` });
      return;
    }
    const [mac, second] = fields as [string, string];
    const rec: ImportRecord = { line: i + 1, mac: padMac(mac) };
    if (isIpv4(second)) rec.ipv4 = second;
    else rec.hostname = second;
    out.records.push(rec);
  });
  return out;
}
