/**
 * TFTP packet codec: RRQ/WRQ/DATA/ACK/ERROR (RFC 1350) and OACK (RFC 2347).
 *
 * Decoding never throws: anyone on the segment can send us bytes, so a bad
 * packet is a value (`{ ok: false, error }`) that names what was wrong, and
 * the server logs and drops it.
 */

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6, // RFC 2347
} as const;

/** Error codes, RFC 1350 section 5 plus 8 from RFC 2347. */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  /** RFC 2347: the client refuses the OACK; UEFI uses it to end its tsize probe. */
  OPTION_NEGOTIATION: 8,
} as const;

/** Options in the order the peer sent them; names kept as sent (matching is case-insensitive, RFC 2347). */
export type OptionList = Array<[name: string, value: string]>;

export type Packet =
  | { op: 'RRQ' | 'WRQ'; filename: string; mode: string; options: OptionList }
  | { op: 'DATA'; block: number; data: Buffer }
  | { op: 'ACK'; block: number }
  | { op: 'ERROR'; code: number; message: string }
  | { op: 'OACK'; options: OptionList };

export type PacketProblem =
  | 'too-short'
  | 'unknown-opcode'
  | 'unterminated-string'
  | 'invalid-utf8'
  | 'empty-filename'
  | 'empty-mode'
  | 'option-without-value'
  | 'trailing-bytes';

export class TftpPacketError {
  readonly name = 'TftpPacketError';
  constructor(
    readonly problem: PacketProblem,
    readonly detail: string,
    /** Opcode as read from the wire, when there were at least two bytes. */
    readonly opcode?: number,
  ) {}
  get message(): string {
    return `malformed TFTP packet (${this.problem}): ${this.detail}`;
  }
}

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; error: TftpPacketError };

const fail = (problem: PacketProblem, detail: string, opcode?: number): DecodeResult =>
  ({ ok: false, error: new TftpPacketError(problem, detail, opcode) });

/**
 * Split a run of NUL-terminated strings (RFC 1350 section 5 for RRQ/WRQ,
 * RFC 2347 for the option list). Strings are UTF-8: a name that is not valid
 * UTF-8 cannot be mapped to a path faithfully, so it is refused rather than
 * silently replaced with U+FFFD.
 */
function splitStrings(buf: Buffer, start: number): { strings: string[] } | { problem: PacketProblem; detail: string } {
  const strings: string[] = [];
  let pos = start;
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos);
    if (end < 0) return { problem: 'unterminated-string', detail: `string at offset ${pos} has no NUL terminator` };
    const raw = buf.subarray(pos, end);
    const s = raw.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(raw)) {
      return { problem: 'invalid-utf8', detail: `string at offset ${pos} is not valid UTF-8` };
    }
    strings.push(s);
    pos = end + 1;
  }
  return { strings };
}

function pairs(strings: string[], from: number): OptionList | null {
  if ((strings.length - from) % 2 !== 0) return null;
  const out: OptionList = [];
  for (let i = from; i < strings.length; i += 2) out.push([strings[i]!, strings[i + 1]!]);
  return out;
}

export function decodePacket(buf: Buffer): DecodeResult {
  if (buf.length < 2) return fail('too-short', `${buf.length} byte(s), an opcode needs 2`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const op = opcode === Opcode.RRQ ? 'RRQ' : 'WRQ';
      const split = splitStrings(buf, 2);
      if ('problem' in split) return fail(split.problem, `${op}: ${split.detail}`, opcode);
      const [filename, mode] = split.strings;
      if (filename === undefined || filename === '') return fail('empty-filename', `${op} without a filename`, opcode);
      if (mode === undefined || mode === '') return fail('empty-mode', `${op} for ${JSON.stringify(filename)} without a mode`, opcode);
      const options = pairs(split.strings, 2);
      if (!options) return fail('option-without-value', `${op} option ${JSON.stringify(split.strings.at(-1))} has no value`, opcode);
      return { ok: true, packet: { op, filename, mode, options } };
    }
    case Opcode.DATA:
      if (buf.length < 4) return fail('too-short', `DATA of ${buf.length} bytes, header needs 4`, opcode);
      return { ok: true, packet: { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case Opcode.ACK:
      if (buf.length < 4) return fail('too-short', `ACK of ${buf.length} bytes, needs 4`, opcode);
      if (buf.length > 4) return fail('trailing-bytes', `ACK of ${buf.length} bytes, expected 4`, opcode);
      return { ok: true, packet: { op: 'ACK', block: buf.readUInt16BE(2) } };
    case Opcode.ERROR: {
      if (buf.length < 4) return fail('too-short', `ERROR of ${buf.length} bytes, header needs 4`, opcode);
      const code = buf.readUInt16BE(2);
      // Some stacks omit the final NUL of the message; accept that, the
      // message is informational only.
      const end = buf.indexOf(0, 4);
      const message = buf.subarray(4, end < 0 ? buf.length : end).toString('utf8');
      return { ok: true, packet: { op: 'ERROR', code, message } };
    }
    case Opcode.OACK: {
      const split = splitStrings(buf, 2);
      if ('problem' in split) return fail(split.problem, `OACK: ${split.detail}`, opcode);
      const options = pairs(split.strings, 0);
      if (!options) return fail('option-without-value', `OACK option ${JSON.stringify(split.strings.at(-1))} has no value`, opcode);
      return { ok: true, packet: { op: 'OACK', options } };
    }
    default:
      return fail('unknown-opcode', `opcode ${opcode}`, opcode);
  }
}

function strings(op: number, parts: string[]): Buffer {
  const bufs = [Buffer.from([op >> 8, op & 0xff])];
  for (const p of parts) bufs.push(Buffer.from(p, 'utf8'), Buffer.from([0]));
  return Buffer.concat(bufs);
}

export function encodeRequest(op: 'RRQ' | 'WRQ', filename: string, mode = 'octet', options: OptionList = []): Buffer {
  return strings(op === 'RRQ' ? Opcode.RRQ : Opcode.WRQ, [filename, mode, ...options.flat()]);
}

export function encodeOack(options: OptionList): Buffer {
  return strings(Opcode.OACK, options.flat());
}

/** Block numbers are 16 bits on the wire; callers pass the absolute number and it wraps (RFC 1350 gives no rule, 0 after 65535 is what tftpd-hpa, curl and atftp expect). */
export function encodeData(block: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  writeDataHeader(out, 0, block);
  data.copy(out, 4);
  return out;
}

/** Write the 4-byte DATA header in place, for packets assembled in a reused buffer. */
export function writeDataHeader(buf: Buffer, offset: number, block: number): void {
  buf.writeUInt16BE(Opcode.DATA, offset);
  buf.writeUInt16BE(block & 0xffff, offset + 2);
}

export function encodeAck(block: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt16BE(Opcode.ACK, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

export function encodeError(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt16BE(Opcode.ERROR, 0);
  out.writeUInt16BE(code & 0xffff, 2);
  msg.copy(out, 4);
  return out;
}
