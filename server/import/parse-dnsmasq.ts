/**
 * dnsmasq static hosts: `dhcp-host=` lines of a dnsmasq.conf, and the lines of
 * a `dhcp-hostsfile` (the same value without the `dhcp-host=` prefix). dnsmasq
 * tells the fields of a dhcp-host apart by their shape, not their position
 * (`MAC,IP`, `MAC,NAME,IP`, `MAC,IP,NAME,LEASE`, `MAC,set:tag,IP`...), so we
 * classify each field the same way. Other options of a dnsmasq.conf
 * (`dhcp-range=`, `dhcp-boot=`, `log-dhcp`) are server config and skipped.
 */
import type { ImportRecord, ParseResult } from './types.js';
import { addNote, padMac } from './types.js';
import { isIpv4 } from '../net/ipv4.js';

/** dnsmasq accepts `*` wildcards in a MAC and an optional ARP hardware-type prefix (`01-` is Ethernet). */
const MAC_LIKE = /^(?:[0-9a-f]{1,2}-)?(?:[0-9a-f*]{1,2}[:-]){5}[0-9a-f*]{1,2}$/i;
const LEASE = /^(?:infinite|\d+[smhdw]?)$/i;

/** dnsmasq: `#` starts a comment at the start of a line or after white space, outside quotes. */
function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '#' && !quoted && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** The dhcp-host value of a line, or undefined when the line is another dnsmasq option. */
function hostValue(line: string): string | undefined {
  const m = /^(?:--)?dhcp-host\s*=\s*(.*)$/.exec(line);
  if (m) return m[1]!;
  // A dhcp-hostsfile line has no `key=`; a conf option has `=` before any comma, or is a bare word like `log-dhcp`.
  const eq = line.indexOf('=');
  const comma = line.indexOf(',');
  if (eq >= 0 && (comma < 0 || eq < comma)) return undefined;
  if (comma < 0 && !MAC_LIKE.test(line) && !line.startsWith('id:')) return undefined;
  return line;
}

/** One MAC in dnsmasq spelling to the raw MAC for the plan; a wildcard or non-Ethernet type cannot be registered. */
function macOf(field: string): { mac: string; problem?: string } {
  let f = field;
  const typed = /^([0-9a-f]{1,2})-(.*)$/i.exec(f);
  if (typed && /^([0-9a-f*]{1,2}[:-]){5}[0-9a-f*]{1,2}$/i.test(typed[2]!)) {
    if (parseInt(typed[1]!, 16) !== 1) return { mac: field, problem: `hardware type ${typed[1]} is not Ethernet` };
    f = typed[2]!;
  }
  if (f.includes('*')) return { mac: field, problem: `${field} is a wildcard MAC; Sidereal registers one card per machine` };
  return { mac: padMac(f) };
}

function parseHostValue(value: string, line: number): ImportRecord | { error: string } {
  const fields = value.split(',').map((f) => f.trim()).filter((f) => f !== '');
  const macs: string[] = [];
  const rec: ImportRecord = { line, mac: '' };
  let clientId: string | undefined;
  let ignore = false;
  const names: string[] = [];
  for (const f of fields) {
    if (/^id:/i.test(f)) clientId = f;
    else if (/^(set|tag|net):/i.test(f)) addNote(rec, `not imported: dnsmasq tag ${f} (use a group)`);
    else if (/^\[.*\]$/.test(f)) addNote(rec, `not imported: IPv6 address ${f}`);
    else if (f.toLowerCase() === 'ignore') ignore = true;
    else if (MAC_LIKE.test(f)) macs.push(f);
    else if (isIpv4(f)) {
      if (rec.ipv4) return { error: `two addresses (${rec.ipv4}, ${f}) in one dhcp-host` };
      rec.ipv4 = f;
    } else if (LEASE.test(f)) addNote(rec, `not imported: per-host lease time ${f} (Sidereal uses dhcp.leaseTime)`);
    else names.push(f);
  }
  if (names.length > 1) return { error: `more than one name (${names.join(', ')}) in one dhcp-host` };
  if (names[0] !== undefined) rec.hostname = names[0];
  if (macs.length === 0) {
    // A client id (or a name alone) identifies the client by something other than its MAC: nothing to key a machine on.
    if (clientId) return { ...rec, mac: clientId, refused: { field: 'mac', reason: `${clientId} is a DHCP client identifier, not a MAC: Sidereal registers machines by MAC` } };
    return { error: `no MAC address in ${JSON.stringify(value)}` };
  }
  if (macs.length > 1) {
    // dnsmasq gives the one address to whichever of the cards asks (a laptop's wired and wireless); Sidereal keys
    // a machine on one MAC with its own address, so splitting would give two machines one address: refuse, do not guess.
    return { ...rec, mac: macs.join(','), refused: { field: 'mac', reason: `several MACs (${macs.join(', ')}) share one entry: not split; register each card with its own address` } };
  }
  const { mac, problem } = macOf(macs[0]!);
  rec.mac = mac;
  if (problem) rec.refused = { field: 'mac', reason: problem };
  else if (ignore) rec.refused = { field: 'mac', reason: 'dnsmasq ignores this MAC (dhcp-host ...,ignore): not registered; set dhcp.unknownClients: ignore to serve only registered machines' };
  else if (clientId) addNote(rec, `not imported: client identifier ${clientId} (the machine is registered by MAC)`);
  return rec;
}

export function parseDnsmasq(input: string): ParseResult {
  const out: ParseResult = { records: [], problems: [] };
  input.split(/\r?\n/).forEach((raw, i) => {
    const line = stripComment(raw).trim();
    if (!line) return;
    const value = hostValue(line);
    if (value === undefined) return;
    const r = parseHostValue(value, i + 1);
    if ('error' in r) out.problems.push({ line: i + 1, message: r.error });
    else out.records.push(r);
  });
  return out;
}
