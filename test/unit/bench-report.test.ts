import { describe, expect, it } from 'vitest';
import { percentile, ratio, sectionMarkdown, stat, targetMet, targetsMarkdown, type Row } from '../../bench/lib/report.js';

const row = (sidereal: number, other: number, target?: Row['target']): Row => ({
  case: 'c', metric: 'throughput', unit: 'MB/s', sidereal: stat([sidereal]), others: { 'tftpd-hpa': stat([other]) }, ...(target ? { target } : {}),
});

describe('bench report', () => {
  it('median, min and max of an odd and an even number of runs', () => {
    expect(stat([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(stat([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
    expect(stat([]).n).toBe(0);
  });

  it('percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });

  it('a ratio is sidereal / reference, and a target is read the way it is written', () => {
    expect(ratio(row(120, 100), 'tftpd-hpa')).toBeCloseTo(1.2);
    expect(targetMet(row(120, 100, { vs: 'tftpd-hpa', op: '>=', value: 1.2, on: 'ratio' }))).toBe(true);
    expect(targetMet(row(119, 100, { vs: 'tftpd-hpa', op: '>=', value: 1.2, on: 'ratio' }))).toBe(false);
    // time: lower is better
    expect(targetMet(row(9, 10, { vs: 'tftpd-hpa', op: '<=', value: 1.0, on: 'ratio' }))).toBe(true);
    // absolute: Sidereal's own figure
    expect(targetMet(row(4.2, 0, { op: '<=', value: 5, on: 'value' }))).toBe(true);
    // a reference that did not run: unknown, not met and not missed
    expect(targetMet(row(1, 0, { vs: 'nginx', op: '>=', value: 0.8, on: 'ratio' }))).toBeUndefined();
    expect(targetMet(row(1, 1))).toBeUndefined();
  });

  it('renders one markdown row per figure with ratio and verdict', () => {
    const md = sectionMarkdown({
      name: 'tftp', title: 'TFTP', notes: ['loopback'],
      rows: [{ ...row(120, 100, { vs: 'tftpd-hpa', op: '>=', value: 1.2, on: 'ratio' }), sidereal: stat([110, 120, 130]) }],
    });
    expect(md).toContain('| case | metric | Sidereal | tftpd-hpa | × tftpd-hpa | target |');
    expect(md).toContain('| c | throughput, MB/s | 120 (110–130) | 100 | 1.20 | >= 1.2 × tftpd-hpa ✔ |');
    expect(md).toContain('- loopback');
  });
});

describe('bench targets table', () => {
  it('lists every row with a target, its reference, ratio and verdict, and counts those met', () => {
    const md = targetsMarkdown([{
      name: 'tftp', title: 'TFTP', notes: [],
      rows: [
        row(120, 100, { vs: 'tftpd-hpa', op: '>=', value: 1.2, on: 'ratio' }),
        row(80, 100, { vs: 'tftpd-hpa', op: '>=', value: 0.9, on: 'ratio' }),
        { ...row(4, 0, { op: '<=', value: 5, on: 'value' }), unit: 'ms', others: {} },
        row(1, 1),
      ],
    }]);
    expect(md).toContain('**Targets: 2 of 3 met.**');
    expect(md).toContain('| tftp | c | throughput, MB/s | 120 | 100 (tftpd-hpa) | 1.20 | >= 1.2× | yes |');
    expect(md).toContain('| tftp | c | throughput, MB/s | 80.0 | 100 (tftpd-hpa) | 0.80 | >= 0.9× | **no** |');
    expect(md).toContain('| tftp | c | throughput, ms | 4.00 | — | — | <= 5 ms | yes |');
  });
});

describe('boot storm client processes', () => {
  it('deals nodes by pairs, so every process gets TFTP (even) and HTTP (odd) nodes', async () => {
    const { dealNodes } = await import('../../bench/storm.js');
    expect(dealNodes([0, 1, 2, 3, 4, 5, 6, 7, 8], 2)).toEqual([[0, 1, 4, 5, 8], [2, 3, 6, 7]]);
    expect(dealNodes([0, 1, 2], 1)).toEqual([[0, 1, 2]]);
  });

  it('merges their results: every node, the last end, CPU and retransmits summed', async () => {
    const { mergeClientResults } = await import('../../bench/storm.js');
    const node = (mac: string, end: number) => ({ mac, via: 'tftp' as const, ok: true, start: 0, end, phases: {}, phaseEnd: {}, dhcpRetransmits: 0, tftpRetransmits: 0, bytes: 1 });
    const m = mergeClientResults([
      { nodes: [node('a', 10)], lastMs: 10, cpuMs: { user: 1, system: 2 }, retransmitsBySecond: [1, 0, 3] },
      { nodes: [node('b', 30), node('c', 5)], lastMs: 30, cpuMs: { user: 4, system: 8 }, retransmitsBySecond: [0, 2] },
    ]);
    expect(m.nodes.map((n) => n.mac)).toEqual(['a', 'b', 'c']);
    expect(m.lastMs).toBe(30);
    expect(m.cpuMs).toEqual({ user: 5, system: 10 });
    expect(m.retransmitsBySecond).toEqual([1, 2, 3]);
  });
});
