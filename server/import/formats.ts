/**
 * The import formats, and telling them apart. The file name decides when it
 * is conventional (`dhcpd.conf`, `ethers`, `*.csv`, `dnsmasq*`); otherwise the
 * content does, by the first thing only one format has. A file that matches
 * none is refused rather than guessed: the admin names the format.
 */
import { basename } from 'node:path';
import type { ParseResult } from './types.js';
import { parseDhcpd } from './parse-dhcpd.js';
import { parseDnsmasq } from './parse-dnsmasq.js';
import { parseEthers } from './parse-ethers.js';
import { parseCsv } from './parse-csv.js';

export type ImportFormat = 'dhcpd' | 'dnsmasq' | 'ethers' | 'csv';
export const IMPORT_FORMATS: readonly ImportFormat[] = ['dhcpd', 'dnsmasq', 'ethers', 'csv'];

export function isImportFormat(v: string): v is ImportFormat {
  return (IMPORT_FORMATS as readonly string[]).includes(v);
}

const MAC = '(?:[0-9a-f]{1,2}[:-]){5}[0-9a-f]{1,2}';

function byName(filename: string): ImportFormat | undefined {
  const name = basename(filename).toLowerCase();
  if (name.endsWith('.csv')) return 'csv';
  if (name === 'ethers' || name.endsWith('.ethers')) return 'ethers';
  if (name.startsWith('dhcpd')) return 'dhcpd';
  if (name.startsWith('dnsmasq') || name.includes('dhcp-host')) return 'dnsmasq';
  return undefined;
}

function byContent(text: string): ImportFormat | undefined {
  if (/^\s*dhcp-host\s*=/m.test(text)) return 'dnsmasq';
  // `host NAME {` outside a comment: only dhcpd.conf has braces.
  if (/^[^#\n]*\bhost\s+("[^"]*"|[\w.-]+)\s*\{/m.test(text)) return 'dhcpd';
  if (/^\s*(subnet|shared-network)\s[^#\n]*\{/m.test(text)) return 'dhcpd';
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const first = lines[0];
  if (!first) return undefined;
  // A CSV header names a mac column; a dhcp-hostsfile starts with a MAC (or a client id) then a comma.
  if (/^"?mac"?\s*(,|$)/i.test(first) || /,\s*"?mac"?\s*(,|$)/i.test(first)) return 'csv';
  if (new RegExp(`^(${MAC}|id:)[^\\s]*,`, 'i').test(first)) return 'dnsmasq';
  if (new RegExp(`^${MAC}\\s+\\S+$`, 'i').test(first)) return 'ethers';
  return undefined;
}

/** The format of an import file, or undefined when neither its name nor its content says. */
export function detectFormat(text: string, filename?: string): ImportFormat | undefined {
  return (filename ? byName(filename) : undefined) ?? byContent(text);
}

export function parseImport(text: string, format: ImportFormat): ParseResult {
  switch (format) {
    case 'dhcpd': return parseDhcpd(text);
    case 'dnsmasq': return parseDnsmasq(text);
    case 'ethers': return parseEthers(text);
    case 'csv': return parseCsv(text);
  }
}
