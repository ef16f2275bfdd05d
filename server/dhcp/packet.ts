/**
 * BOOTP/DHCP message codec (RFC 951, RFC 2131 section 2, RFC 2132).
 *
 * Fixed header (236 bytes), magic cookie 99.130.83.99, then options. Options
 * are kept as an ordered list of raw {code, data} so unknown ones round-trip
 * and repeated ones (RFC 3396 long options) are preserved as sent.
 */
import { lengthProblem, OPTIONS_BY_CODE } from './options.js';
import { readIp, toInt } from '../net/ipv4.js';

export interface DhcpOption { code: number; data: Buffer }

export interface DhcpPacket {
  op: number;        // 1 BOOTREQUEST, 2 BOOTREPLY
  htype: number;     // 1 Ethernet
  hlen: number;      // 6 for Ethernet
  hops: number;
  xid: number;
  secs: number;
  flags: number;     // bit 15: broadcast (RFC 2131 4.1)
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: Buffer;    // all 16 bytes, so padding round-trips
  sname: string;
  file: string;
  options: DhcpOption[];
}

export class DhcpDecodeError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'DhcpDecodeError';
  }
}

export class DhcpEncodeError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'DhcpEncodeError';
  }
}

export const MAGIC_COOKIE = 0x63825363;
export const BROADCAST_FLAG = 0x8000;
const HEADER_LEN = 236;
const OPTIONS_START = 240;
const SNAME_OFF = 44, SNAME_LEN = 64;
const FILE_OFF = 108, FILE_LEN = 128;
/** RFC 1542 3.3: some relays and old clients drop BOOTP messages shorter than 300 bytes. */
export const MIN_PACKET = 300;

function optionName(code: number): string {
  const def = OPTIONS_BY_CODE.get(code);
  return def ? `option ${code} (${def.name})` : `option ${code}`;
}

/** Parse one options area (options field, or file/sname when overloaded). */
function parseOptionArea(buf: Buffer, start: number, end: number, area: string): DhcpOption[] {
  const out: DhcpOption[] = [];
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === 0) { i++; continue; }       // Pad (RFC 2132 3.1)
    if (code === 255) break;                  // End (RFC 2132 3.2); padding may follow
    if (i + 1 >= end) throw new DhcpDecodeError(`${area}: ${optionName(code)}`, `length byte missing at offset ${i + 1}`);
    const len = buf[i + 1]!;
    if (i + 2 + len > end) {
      throw new DhcpDecodeError(`${area}: ${optionName(code)}`, `length ${len} overruns the ${area} (${end - i - 2} bytes left)`);
    }
    const problem = lengthProblem(code, len);
    if (problem) throw new DhcpDecodeError(`${area}: ${optionName(code)}`, `${problem}, got ${len}`);
    out.push({ code, data: Buffer.from(buf.subarray(i + 2, i + 2 + len)) });
    i += 2 + len;
  }
  // A missing End option is tolerated: several ROMs stop at the end of the buffer.
  return out;
}

function cString(buf: Buffer, off: number, len: number): string {
  const field = buf.subarray(off, off + len);
  const nul = field.indexOf(0);
  return (nul >= 0 ? field.subarray(0, nul) : field).toString('latin1');
}

export function decodePacket(buf: Buffer): DhcpPacket {
  if (!Buffer.isBuffer(buf)) throw new DhcpDecodeError('packet', 'not a buffer');
  if (buf.length < OPTIONS_START) {
    throw new DhcpDecodeError('packet', `short packet: ${buf.length} bytes, need at least ${OPTIONS_START}`);
  }
  const op = buf[0]!;
  if (op !== 1 && op !== 2) throw new DhcpDecodeError('op', `must be 1 or 2, got ${op}`);
  const htype = buf[1]!;
  const hlen = buf[2]!;
  if (hlen === 0 || hlen > 16) throw new DhcpDecodeError('hlen', `must be 1..16, got ${hlen}`);
  if (htype === 1 && hlen !== 6) throw new DhcpDecodeError('hlen', `must be 6 for Ethernet (htype 1), got ${hlen}`);
  const cookie = buf.readUInt32BE(HEADER_LEN);
  if (cookie !== MAGIC_COOKIE) {
    throw new DhcpDecodeError('magic cookie', `expected 0x63825363, got 0x${cookie.toString(16).padStart(8, '0')}`);
  }

  const options = parseOptionArea(buf, OPTIONS_START, buf.length, 'options');
  let sname = cString(buf, SNAME_OFF, SNAME_LEN);
  let file = cString(buf, FILE_OFF, FILE_LEN);
  // RFC 2131 4.1 / RFC 2132 9.3: option 52 moves options into file (1), sname (2)
  // or both (3), read in that order. The overload marker itself is framing and
  // is dropped, so the decoded packet re-encodes without overload.
  const overloadAt = options.findIndex((o) => o.code === 52);
  if (overloadAt >= 0) {
    const v = options[overloadAt]!.data[0]!;
    if (v < 1 || v > 3) throw new DhcpDecodeError('option 52 (overload)', `must be 1, 2 or 3, got ${v}`);
    options.splice(overloadAt, 1);
    if (v & 1) { options.push(...parseOptionArea(buf, FILE_OFF, FILE_OFF + FILE_LEN, 'file (overloaded)')); file = ''; }
    if (v & 2) { options.push(...parseOptionArea(buf, SNAME_OFF, SNAME_OFF + SNAME_LEN, 'sname (overloaded)')); sname = ''; }
  }

  return {
    op, htype, hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: readIp(buf, 12),
    yiaddr: readIp(buf, 16),
    siaddr: readIp(buf, 20),
    giaddr: readIp(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname, file, options,
  };
}

function writeIp(buf: Buffer, off: number, ip: string, field: string): void {
  let n: number;
  try { n = toInt(ip); } catch { throw new DhcpEncodeError(field, `not an IPv4 address: ${JSON.stringify(ip)}`); }
  buf.writeUInt32BE(n, off);
}

function u(field: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new DhcpEncodeError(field, `must be an integer 0..${max}, got ${v}`);
  return v;
}

/**
 * Encode; options longer than 255 bytes are split into consecutive instances
 * (RFC 3396). Written straight into one buffer: a reply is encoded per packet.
 */
export function encodePacket(p: DhcpPacket): Buffer {
  for (const o of p.options) {
    if (!Number.isInteger(o.code) || o.code < 0 || o.code > 254) u(`option ${o.code}`, o.code, 254);
    if (o.code === 0) throw new DhcpEncodeError('option 0', 'pad is not an option');
  }
  if (p.chaddr.length > 16) throw new DhcpEncodeError('chaddr', `at most 16 bytes, got ${p.chaddr.length}`);
  // latin1: one byte per UTF-16 unit, so the string's length is its size.
  // Both fields are NUL-terminated strings (RFC 2131 2): keep room for the NUL.
  if (p.sname.length >= SNAME_LEN) throw new DhcpEncodeError('sname', `at most ${SNAME_LEN - 1} bytes, got ${p.sname.length}`);
  if (p.file.length >= FILE_LEN) throw new DhcpEncodeError('file', `at most ${FILE_LEN - 1} bytes, got ${p.file.length}`);
  const buf = Buffer.alloc(Math.max(MIN_PACKET, encodedLength(p)));

  buf[0] = u('op', p.op, 255);
  buf[1] = u('htype', p.htype, 255);
  buf[2] = u('hlen', p.hlen, 16);
  buf[3] = u('hops', p.hops, 255);
  buf.writeUInt32BE(u('xid', p.xid, 0xffffffff), 4);
  buf.writeUInt16BE(u('secs', p.secs, 0xffff), 8);
  buf.writeUInt16BE(u('flags', p.flags, 0xffff), 10);
  writeIp(buf, 12, p.ciaddr, 'ciaddr');
  writeIp(buf, 16, p.yiaddr, 'yiaddr');
  writeIp(buf, 20, p.siaddr, 'siaddr');
  writeIp(buf, 24, p.giaddr, 'giaddr');
  p.chaddr.copy(buf, 28);
  if (p.sname) buf.write(p.sname, SNAME_OFF, 'latin1');
  if (p.file) buf.write(p.file, FILE_OFF, 'latin1');
  buf.writeUInt32BE(MAGIC_COOKIE, HEADER_LEN);
  let off = OPTIONS_START;
  for (const o of p.options) {
    let pos = 0;
    do {
      const n = Math.min(255, o.data.length - pos);
      buf[off++] = o.code;
      buf[off++] = n;
      o.data.copy(buf, off, pos, pos + n);
      off += n;
      pos += n;
    } while (pos < o.data.length);
  }
  buf[off] = 255;
  return buf;
}

/** Size of the encoded message before padding to 300: for the option-57 budget. */
export function encodedLength(p: DhcpPacket): number {
  let n = OPTIONS_START + 1;
  for (const o of p.options) n += Math.max(1, Math.ceil(o.data.length / 255)) * 2 + o.data.length;
  return n;
}

export function isBroadcastFlag(p: DhcpPacket): boolean {
  return (p.flags & BROADCAST_FLAG) !== 0;
}
