import { describe, expect, it } from 'vitest';
import { defaultMaxBlksize, negotiate, resolveLimits, type NegotiationLimits } from '../../server/tftp/options.js';
import type { OptionList } from '../../server/tftp/packet.js';

const limits: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64 };
const ctx = { fileSize: 171456, defaultTimeoutMs: 1000 };
const neg = (o: OptionList, l = limits, c = ctx) => negotiate(o, l, c);

describe('negotiate', () => {
  const table: Array<[string, OptionList, OptionList, { blksize?: number; windowsize?: number; timeoutMs?: number; tsize?: number | null }]> = [
    ['no options: no OACK', [], [], { blksize: 512, windowsize: 1, timeoutMs: 1000, tsize: null }],
    ['UEFI probe', [['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']],
      [['tsize', '171456'], ['blksize', '1468'], ['windowsize', '4']], { blksize: 1468, windowsize: 4, tsize: 171456 }],
    ['blksize capped to the configured max', [['blksize', '65464']], [['blksize', '1468']], { blksize: 1468 }],
    ['blksize above RFC max capped', [['blksize', '99999']], [['blksize', '1468']], { blksize: 1468 }],
    ['blksize smaller than the cap kept', [['blksize', '1408']], [['blksize', '1408']], { blksize: 1408 }],
    ['blksize 8 is the minimum', [['blksize', '8']], [['blksize', '8']], { blksize: 8 }],
    ['blksize 7 ignored', [['blksize', '7']], [], { blksize: 512 }],
    ['blksize garbage ignored', [['blksize', '14x8']], [], { blksize: 512 }],
    ['blksize negative ignored', [['blksize', '-1']], [], { blksize: 512 }],
    ['windowsize capped', [['windowsize', '65535']], [['windowsize', '64']], { windowsize: 64 }],
    ['windowsize garbage ignored (atftp "disable")', [['windowsize', 'disable']], [], { windowsize: 1 }],
    ['windowsize 0 ignored', [['windowsize', '0']], [], { windowsize: 1 }],
    ['windowsize above RFC max ignored', [['windowsize', '65536']], [], { windowsize: 1 }],
    ['timeout used as retransmit interval', [['timeout', '3']], [['timeout', '3']], { timeoutMs: 3000 }],
    ['timeout 0 ignored', [['timeout', '0']], [], { timeoutMs: 1000 }],
    ['timeout 256 ignored', [['timeout', '256']], [], { timeoutMs: 1000 }],
    ['unknown options ignored', [['multicast', ''], ['foo', 'bar'], ['blksize', '1024']], [['blksize', '1024']], { blksize: 1024 }],
    ['names are case-insensitive, OACK lower-case', [['BlkSize', '1024'], ['TSIZE', '0']], [['blksize', '1024'], ['tsize', '171456']], {}],
    ['a repeated option: the first wins', [['blksize', '1024'], ['blksize', '512']], [['blksize', '1024']], { blksize: 1024 }],
    ['tsize garbage ignored', [['tsize', 'x']], [], { tsize: null }],
  ];
  for (const [name, req, oack, want] of table) {
    it(name, () => {
      const n = neg(req);
      expect(n.oack).toEqual(oack);
      expect(n).toMatchObject(want);
    });
  }
  it('records why options were ignored', () => {
    expect(neg([['windowsize', 'disable'], ['foo', '1']]).ignored.map((i) => i.why)).toEqual(['not a number', 'unknown option']);
  });
  it('leaves tsize out for an empty file (curl rejects tsize 0)', () => {
    expect(neg([['tsize', '0'], ['blksize', '1468']], limits, { fileSize: 0, defaultTimeoutMs: 1000 }).oack).toEqual([['blksize', '1468']]);
  });
});

describe('limits', () => {
  it('defaults blksize to MTU - 32 and falls back to Ethernet for unknown addresses', () => {
    expect(defaultMaxBlksize('192.0.2.254')).toBe(1468);
    // lo has MTU 65536 on Linux: capped to the RFC 2348 maximum.
    expect(defaultMaxBlksize('127.0.0.1')).toBe(65464);
  });
  it('configuration overrides and clamps', () => {
    expect(resolveLimits('192.0.2.254', {})).toEqual({ maxBlksize: 1468, maxWindowsize: 64 });
    expect(resolveLimits('192.0.2.254', { maxBlksize: 9000, maxWindowsize: 16 })).toEqual({ maxBlksize: 9000, maxWindowsize: 16 });
    expect(resolveLimits('192.0.2.254', { maxBlksize: 1e6, maxWindowsize: 1e6 })).toEqual({ maxBlksize: 65464, maxWindowsize: 32768 });
    expect(resolveLimits('192.0.2.254', { maxBlksize: 1, maxWindowsize: 0 })).toEqual({ maxBlksize: 8, maxWindowsize: 1 });
  });
});
