import { describe, expect, it } from 'vitest';
import {
  decodePacket, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, ErrorCode, TftpPacketError, type Packet,
} from '../../server/tftp/packet.js';

/** UDP payloads from ../shared/captures (OVMF PXE and SeaBIOS iPXE against dnsmasq). */
const CAPTURED = {
  ovmfProbe: '000165666936342f7379736c696e75782e656669006f63746574007473697a65003000626c6b73697a6500313436380077696e646f7773697a65003400',
  ovmfProbeOack: '0006626c6b73697a650031343638007473697a650031373134353600',
  ovmfAbort: '00050008557365722061626f7274656420746865207472616e7366657200',
  ovmfSecond: '000165666936342f7379736c696e75782e656669006f6374657400626c6b73697a6500313436380077696e646f7773697a65003400',
  ipxeCfg: '00017078656c696e75782e6366672f30312d35322d35342d30302d37372d30302d3130006f63746574007473697a65003000626c6b73697a65003134303800',
};

function ok(buf: Buffer): Packet {
  const r = decodePacket(buf);
  if (!r.ok) throw new Error(r.error.message);
  return r.packet;
}

describe('decode captured firmware packets', () => {
  it('OVMF size probe RRQ', () => {
    expect(ok(Buffer.from(CAPTURED.ovmfProbe, 'hex'))).toEqual({
      op: 'RRQ', filename: 'efi64/syslinux.efi', mode: 'octet',
      options: [['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']],
    });
  });
  it('OACK, ERROR 8 and the second RRQ', () => {
    expect(ok(Buffer.from(CAPTURED.ovmfProbeOack, 'hex'))).toEqual({ op: 'OACK', options: [['blksize', '1468'], ['tsize', '171456']] });
    expect(ok(Buffer.from(CAPTURED.ovmfAbort, 'hex'))).toEqual({ op: 'ERROR', code: ErrorCode.OPTION_NEGOTIATION, message: 'User aborted the transfer' });
    expect(ok(Buffer.from(CAPTURED.ovmfSecond, 'hex'))).toMatchObject({ op: 'RRQ', options: [['blksize', '1468'], ['windowsize', '4']] });
  });
  it('re-encodes byte-exact', () => {
    for (const hex of [CAPTURED.ovmfProbe, CAPTURED.ipxeCfg, CAPTURED.ovmfSecond]) {
      const p = ok(Buffer.from(hex, 'hex'));
      if (p.op !== 'RRQ') throw new Error('RRQ expected');
      expect(encodeRequest('RRQ', p.filename, p.mode, p.options).toString('hex')).toBe(hex);
    }
    const oack = ok(Buffer.from(CAPTURED.ovmfProbeOack, 'hex'));
    if (oack.op !== 'OACK') throw new Error('OACK expected');
    expect(encodeOack(oack.options).toString('hex')).toBe(CAPTURED.ovmfProbeOack);
    expect(encodeError(8, 'User aborted the transfer').toString('hex')).toBe(CAPTURED.ovmfAbort);
  });
});

describe('round trips', () => {
  it('DATA, ACK, ERROR, WRQ', () => {
    expect(ok(encodeData(7, Buffer.from('abc')))).toEqual({ op: 'DATA', block: 7, data: Buffer.from('abc') });
    expect(ok(encodeData(65536, Buffer.alloc(0)))).toEqual({ op: 'DATA', block: 0, data: Buffer.alloc(0) });
    expect(ok(encodeAck(65535))).toEqual({ op: 'ACK', block: 65535 });
    expect(ok(encodeError(1, 'File not found'))).toEqual({ op: 'ERROR', code: 1, message: 'File not found' });
    expect(ok(encodeRequest('WRQ', 'x', 'octet'))).toEqual({ op: 'WRQ', filename: 'x', mode: 'octet', options: [] });
    expect(ok(encodeRequest('RRQ', 'é/ü', 'octet'))).toMatchObject({ filename: 'é/ü' });
  });
  it('accepts an ERROR without its final NUL', () => {
    expect(ok(Buffer.from([0, 5, 0, 2, 0x61]))).toEqual({ op: 'ERROR', code: 2, message: 'a' });
  });
});

describe('malformed input is a typed error, never a throw', () => {
  const cases: Array<[string, number[], string]> = [
    ['empty', [], 'too-short'],
    ['one byte', [0], 'too-short'],
    ['unknown opcode', [0, 9], 'unknown-opcode'],
    ['opcode 0', [0, 0, 1, 2], 'unknown-opcode'],
    ['RRQ without NUL', [0, 1, 0x61], 'unterminated-string'],
    ['RRQ without mode', [0, 1, 0x61, 0], 'empty-mode'],
    ['RRQ empty filename', [0, 1, 0, 0x6f, 0], 'empty-filename'],
    ['RRQ dangling option', [0, 1, 0x61, 0, 0x6f, 0, 0x62, 0], 'option-without-value'],
    ['RRQ invalid UTF-8', [0, 1, 0xc3, 0x28, 0, 0x6f, 0], 'invalid-utf8'],
    ['short DATA', [0, 3, 0], 'too-short'],
    ['short ACK', [0, 4, 0], 'too-short'],
    ['long ACK', [0, 4, 0, 1, 0], 'trailing-bytes'],
    ['short ERROR', [0, 5, 0], 'too-short'],
    ['OACK dangling', [0, 6, 0x61, 0], 'option-without-value'],
  ];
  for (const [name, bytes, problem] of cases) {
    it(name, () => {
      const r = decodePacket(Buffer.from(bytes));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error).toBeInstanceOf(TftpPacketError);
      expect(r.error.problem).toBe(problem);
      expect(r.error.message).toContain(problem);
    });
  }
  it('survives random garbage', () => {
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(Math.floor(Math.random() * 40));
      for (let j = 0; j < b.length; j++) b[j] = Math.random() < 0.3 ? 0 : Math.floor(Math.random() * 256);
      if (b.length >= 2) b[0] = 0;
      expect(() => decodePacket(b)).not.toThrow();
    }
  });
});
