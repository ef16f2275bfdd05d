/**
 * The CI fuzz campaign (issue 7): 100,000 packets of each protocol
 * (FUZZ_PACKETS to change), seeded (FUZZ_SEED; the default is fixed so a
 * failure replays), plus fast-check properties of both codecs. `npm run
 * fuzz` runs the same campaign with 1,000,000.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePacket as decodeDhcp, encodePacket } from '../../server/dhcp/packet.js';
import { decodePacket as decodeTftp, encodeRequest, type OptionList } from '../../server/tftp/packet.js';
import { arbRequest } from './dhcp-fuzz.js';
import { heapGrowth } from './mutate.js';
import { runFuzz, type FuzzReport } from './run.js';

const PACKETS = Number(process.env.FUZZ_PACKETS ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);

describe('codec properties (fast-check)', () => {
  it('DHCP: whatever a client sends and we decode, encodes back to the same bytes', () => {
    fc.assert(fc.property(arbRequest, (p) => {
      const bytes = encodePacket(p);
      let decoded;
      try { decoded = decodeDhcp(bytes); } catch { return true; } // refused with a named field: fine
      expect(encodePacket(decoded).equals(bytes)).toBe(true);
    }), { numRuns: 5000, seed: SEED });
  });

  it('TFTP: a request with any file name, mode and options decodes to what was encoded', () => {
    const text = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\0'));
    fc.assert(fc.property(text, text, fc.array(fc.tuple(text, text), { maxLength: 6 }), (name, mode, options: OptionList) => {
      const d = decodeTftp(encodeRequest('RRQ', name, mode, options));
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.packet).toEqual({ op: 'RRQ', filename: name, mode, options });
    }), { numRuns: 5000, seed: SEED });
  });

  it('TFTP: the decoder never throws, whatever the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (a) => {
      const r = decodeTftp(Buffer.from(a));
      expect(typeof r.ok).toBe('boolean');
    }), { numRuns: 20_000, seed: SEED });
  });
});

describe(`fuzz campaign: ${PACKETS} packets of each protocol, seed ${SEED}`, () => {
  let report: FuzzReport;

  it('DHCP and TFTP: no crash, no reply that breaks the RFC rules, tshark agrees, heap flat', async () => {
    report = await runFuzz(PACKETS, SEED, (l) => console.log(l));
    const { dhcp, tftp } = report;
    expect(dhcp.fed).toBe(PACKETS);
    expect(tftp.fed).toBe(PACKETS);
    expect(dhcp.violations).toEqual([]);
    expect(tftp.violations).toEqual([]);
    expect(dhcp.tsharkFindings).toEqual([]);
    expect(tftp.tsharkFindings).toEqual([]);
    // The campaign reached the handlers, not only the length checks.
    expect(dhcp.handled).toBeGreaterThan(PACKETS / 5);
    expect(dhcp.replies['2'] ?? 0).toBeGreaterThan(0); // OFFER
    expect(dhcp.replies['5'] ?? 0).toBeGreaterThan(0); // ACK
    expect(dhcp.replies['6'] ?? 0).toBeGreaterThan(0); // NAK
    expect(tftp.replies.DATA ?? 0).toBeGreaterThan(0);
    expect(tftp.replies.OACK ?? 0).toBeGreaterThan(0);
    expect(tftp.server.malformed).toBeGreaterThan(0);
    expect(tftp.server.refused).toBeGreaterThan(0);
    expect(heapGrowth(dhcp.heap)).toBeLessThan(16);
    expect(heapGrowth(tftp.heap)).toBeLessThan(16);
    // The pump's per-session buffers (128 KiB reads) are freed with each session: a leak of them would show here.
    expect(heapGrowth(tftp.rss)).toBeLessThan(64);
  }, 600_000);
});
