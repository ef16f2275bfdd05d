/**
 * What every import parser returns. Parsers only read syntax: they keep values
 * raw (the MAC as written, the address as written) and leave every judgement
 * to the plan, which asks the inventory's own checks, so a dry run refuses
 * exactly what the real run would. A parser refuses a record itself only when
 * the source format says something Sidereal cannot express (a dnsmasq client
 * id, several MACs sharing one address, a dnsmasq `ignore`).
 */

export interface ImportRecord {
  /** 1-based line of the record in the source (the `host` keyword, the CSV row's first line). */
  line: number;
  /** As written (padded to two digits per byte where the format allows `8:0:20:..`); the plan normalises it. */
  mac: string;
  hostname?: string;
  ipv4?: string;
  group?: string;
  root?: string;
  bootMode?: string;
  kernelArgs?: string;
  /** What the source said that is not imported, e.g. a per-host boot file: shown in the dry run. */
  note?: string;
  /** Set by a parser when the record cannot be imported whatever the inventory holds. */
  refused?: { field: string; reason: string };
}

/** A line the parser could not read at all (bad syntax, unknown CSV column). */
export interface ParseProblem {
  line: number;
  message: string;
}

export interface ParseResult {
  records: ImportRecord[];
  problems: ParseProblem[];
}

/**
 * `8:0:20:1:2:3` -> `08:00:20:01:02:03`: /etc/ethers and dhcpd.conf allow
 * one-digit bytes, the inventory's MAC parser does not. Anything else is
 * returned as it is, for normalizeMac to accept or refuse.
 */
export function padMac(raw: string): string {
  const m = /^([0-9a-f]{1,2})([:-])([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})$/i.exec(raw);
  if (!m) return raw;
  return [m[1], m[3], m[4], m[5], m[6], m[7]].map((b) => b!.padStart(2, '0')).join(m[2]);
}

/** Append to a record's note: several things may be dropped from one host. */
export function addNote(r: ImportRecord, note: string): void {
  r.note = r.note ? `${r.note}; ${note}` : note;
}
