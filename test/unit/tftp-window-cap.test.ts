import { describe, expect, it } from 'vitest';
import {
  blockFootprint, DEFAULT_MAX_WINDOW_BYTES, negotiate, resolveLimits, windowCapForBytes, type NegotiationLimits,
} from '../../server/tftp/options.js';

const limits: NegotiationLimits = { maxBlksize: 65464, maxWindowsize: 64 };
const ctx = { fileSize: 100 << 20, defaultTimeoutMs: 1000 };

describe('window byte cap (a window must fit a default receive buffer)', () => {
  it('estimates a datagram footprint as the allocator would size it', () => {
    expect(blockFootprint(512)).toBe(1024);
    expect(blockFootprint(1468)).toBe(2048);
    expect(blockFootprint(8192)).toBe(16384);
    expect(windowCapForBytes(8192, DEFAULT_MAX_WINDOW_BYTES)).toBe(8);
    expect(windowCapForBytes(65464, DEFAULT_MAX_WINDOW_BYTES)).toBe(1);
  });

  it('answers a smaller windowsize at large blksizes (RFC 7440 allows it) and says why', () => {
    const n = negotiate([['blksize', '8192'], ['windowsize', '16']], limits, ctx);
    expect(n.windowsize).toBe(8);
    expect(n.oack).toEqual([['blksize', '8192'], ['windowsize', '8']]);
    expect(n.ignored.map((i) => i.why).join()).toMatch(/reduced to 8/);
  });

  it('applies whatever the order of the options', () => {
    const n = negotiate([['windowsize', '16'], ['blksize', '8192']], limits, ctx);
    expect(n.windowsize).toBe(8);
    expect(n.oack).toEqual([['windowsize', '8'], ['blksize', '8192']]);
  });

  it('leaves windows at Ethernet-sized blocks alone', () => {
    expect(negotiate([['blksize', '1468'], ['windowsize', '64']], limits, ctx).windowsize).toBe(64);
    expect(negotiate([['blksize', '512'], ['windowsize', '16']], limits, ctx).oack).toEqual([['blksize', '512'], ['windowsize', '16']]);
    expect(negotiate([['blksize', '8192'], ['windowsize', '8']], limits, ctx).ignored).toEqual([]);
  });

  it('is configurable through the server limits', () => {
    const l = resolveLimits('192.0.2.254', { maxBlksize: 9000, maxWindowsize: 64, maxWindowBytes: 1 << 20 });
    expect(l.maxWindowBytes).toBe(1 << 20);
    expect(negotiate([['blksize', '8192'], ['windowsize', '16']], l, ctx).windowsize).toBe(16);
    expect(resolveLimits('192.0.2.254', {})).not.toHaveProperty('maxWindowBytes');
  });
});
