import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { registerMetricsRoute } from '../../server/http/metrics-route.js';
import { parseExposition, sampleValue } from '../../server/metrics/exposition.js';
import { escapeLabelValue, MetricsRegistry } from '../../server/metrics/registry.js';
import { createSiderealMetrics, normalizeDhcpOutcome, normalizeDhcpType, packageVersion } from '../../server/metrics/sidereal-metrics.js';

describe('MetricsRegistry render', () => {
  it('writes HELP and TYPE per metric, then its samples', () => {
    const r = new MetricsRegistry();
    const c = r.counter('demo_requests_total', 'Requests handled.', ['method', 'code']);
    const g = r.gauge('demo_temperature', 'A gauge.');
    c.inc({ method: 'get', code: '200' });
    c.inc({ method: 'get', code: '200' }, 2);
    c.inc({ code: '404', method: 'get' });
    g.set(undefined, 21.5);
    expect(r.render()).toBe([
      '# HELP demo_requests_total Requests handled.',
      '# TYPE demo_requests_total counter',
      'demo_requests_total{method="get",code="200"} 3',
      'demo_requests_total{method="get",code="404"} 1',
      '# HELP demo_temperature A gauge.',
      '# TYPE demo_temperature gauge',
      'demo_temperature 21.5',
      '',
    ].join('\n'));
    parseExposition(r.render());
  });

  it('renders a label-less counter as 0 before the first inc, a labelled one with no series as HELP/TYPE only', () => {
    const r = new MetricsRegistry();
    r.counter('a_total', 'A.');
    r.counter('b_total', 'B.', ['kind']);
    expect(r.render()).toBe('# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b_total B.\n# TYPE b_total counter\n');
  });

  it('escapes backslash, double quote and newline in label values, and backslash and newline in HELP', () => {
    const r = new MetricsRegistry();
    r.gauge('esc', 'Help with \\ and\nnewline "quotes" kept.', ['v']).set({ v: 'a\\b"c\nd' }, 1);
    const text = r.render();
    expect(text).toContain('# HELP esc Help with \\\\ and\\nnewline "quotes" kept.\n');
    expect(text).toContain('esc{v="a\\\\b\\"c\\nd"} 1\n');
    expect(text.split('\n')).toHaveLength(4); // no raw newline leaked
    const parsed = parseExposition(text);
    expect(parsed.get('esc')!.samples[0]!.labels.v).toBe('a\\b"c\nd');
    expect(parsed.get('esc')!.help).toBe('Help with \\ and\nnewline "quotes" kept.');
    expect(escapeLabelValue('plain')).toBe('plain');
  });

  it('formats special values', () => {
    const r = new MetricsRegistry();
    const g = r.gauge('special', 'Special values.', ['k']);
    g.set({ k: 'nan' }, NaN);
    g.set({ k: 'pinf' }, Infinity);
    g.set({ k: 'ninf' }, -Infinity);
    g.set({ k: 'neg' }, -3);
    g.set({ k: 'big' }, 1e21);
    const text = r.render();
    expect(text).toContain('special{k="nan"} NaN\n');
    expect(text).toContain('special{k="pinf"} +Inf\n');
    expect(text).toContain('special{k="ninf"} -Inf\n');
    expect(text).toContain('special{k="big"} 1e+21\n');
    const p = parseExposition(text);
    expect(sampleValue(p, 'special', { k: 'neg' })).toBe(-3);
    expect(sampleValue(p, 'special', { k: 'big' })).toBe(1e21);
  });

  it('bound series accumulate and show up at 0 once bound', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'X.', ['k']);
    const b = c.labels({ k: 'one' });
    expect(r.render()).toContain('x_total{k="one"} 0\n');
    for (let i = 0; i < 1000; i++) b.inc();
    b.inc(0.5);
    expect(c.get({ k: 'one' })).toBe(1000.5);
    expect(r.render()).toContain('x_total{k="one"} 1000.5\n');
  });

  it('evaluates collect gauges at each scrape, summing duplicate label sets', () => {
    const r = new MetricsRegistry();
    let n = 0;
    let calls = 0;
    r.gauge('live', 'Live value.', [], { collect: () => { calls++; return [{ labels: {}, value: n }]; } });
    r.gauge('by_state', 'By state.', ['state'], {
      collect: () => [{ labels: { state: 'a' }, value: 1 }, { labels: { state: 'b' }, value: n }, { labels: { state: 'a' }, value: 2 }],
    });
    expect(calls).toBe(0);
    expect(r.render()).toContain('live 0\n');
    n = 7;
    const text = r.render();
    expect(calls).toBe(2);
    expect(text).toContain('live 7\n');
    expect(text).toContain('by_state{state="a"} 3\nby_state{state="b"} 7\n');
    parseExposition(text);
  });

  it('a collect that throws renders no sample and reports the error', () => {
    const errors: string[] = [];
    const r = new MetricsRegistry({ onCollectError: (name, err) => errors.push(`${name}: ${(err as Error).message}`) });
    r.gauge('broken', 'Broken.', [], { collect: () => { throw new Error('db closed'); } });
    r.counter('ok_total', 'Still rendered.').inc();
    const text = r.render();
    expect(text).toBe('# HELP broken Broken.\n# TYPE broken gauge\n# HELP ok_total Still rendered.\n# TYPE ok_total counter\nok_total 1\n');
    expect(errors).toEqual(['broken: db closed']);
  });

  it('refuses bad names, missing or unknown labels, duplicate metrics and negative counter increments', () => {
    const r = new MetricsRegistry();
    expect(() => r.counter('no_suffix', 'x')).toThrow(/_total/);
    expect(() => r.gauge('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => r.gauge('g', 'x', ['__reserved'])).toThrow(/invalid label name/);
    expect(() => r.gauge('g2', 'x', ['a', 'a'])).toThrow(/duplicate/);
    const c = r.counter('c_total', 'x', ['a']);
    expect(() => r.counter('c_total', 'x')).toThrow(/already registered/);
    expect(() => c.inc()).toThrow(/required/);
    expect(() => c.inc({ b: '1' })).toThrow(/missing/);
    expect(() => c.inc({ a: '1', b: '2' })).toThrow(/unknown label/);
    expect(() => c.inc({ a: '1' }, -1)).toThrow(/only goes up/);
    expect(() => r.counter('plain_total', 'x').inc({ a: '1' })).toThrow(/no labels/);
  });
});

describe('parseExposition (the strict check the tests use in place of promtool)', () => {
  it('rejects malformed expositions', () => {
    const bad = [
      'x 1',                                              // no HELP/TYPE
      '# HELP x X.\n# TYPE x gauge\nx 1',                 // no final newline
      '# HELP x X.\n# TYPE x counter\nx 1\n',             // counter without _total
      '# HELP x X.\n# TYPE x gauge\nx{a="b} 1\n',         // unterminated value
      '# HELP x X.\n# TYPE x gauge\nx{a="b\\q"} 1\n',     // bad escape
      '# HELP x X.\n# TYPE x gauge\nx 1\nx 2\n',          // duplicate series
      '# HELP x X.\n# TYPE x gauge\ny 1\n',               // sample of another metric
      '# HELP x X.\n# TYPE x gauge\nx one\n',             // not a number
      '# HELP x X.\n# TYPE x gauge\nx{a="1",a="2"} 1\n',  // repeated label
      '# TYPE x gauge\n# HELP x X.\nx 1\n',               // TYPE before HELP
    ];
    for (const text of bad) expect(() => parseExposition(text), text).toThrow();
    expect(parseExposition('').size).toBe(0);
  });
});

describe('Sidereal metrics', () => {
  const make = (state: { leases: number; machines: Array<{ state: string; count: number }> }) =>
    createSiderealMetrics({ activeLeases: () => state.leases, machinesByState: () => state.machines, version: '1.2.3' });

  it('normalises DHCP types and outcomes to bounded sets', () => {
    expect(['ack-selecting', 'ack-init-reboot', 'ack-renew'].map(normalizeDhcpOutcome)).toEqual(['ack', 'ack', 'ack']);
    expect(['offer', 'inform-ack', 'nak', 'ignored', 'dropped', 'no-offer', 'declined', 'released'].map(normalizeDhcpOutcome))
      .toEqual(['offer', 'inform-ack', 'nak', 'ignored', 'dropped', 'no-offer', 'declined', 'released']);
    expect(normalizeDhcpOutcome('52:54:00:00:00:01')).toBe('other');
    expect(normalizeDhcpType('DISCOVER')).toBe('DISCOVER');
    expect(normalizeDhcpType('BOOTP')).toBe('BOOTP');
    expect(normalizeDhcpType('type-42')).toBe('other');
  });

  it('counts hook calls and reads inventory figures at scrape time', () => {
    const state = { leases: 2, machines: [{ state: 'pxelinux', count: 3 }, { state: 'ipxe', count: 1 }] };
    const m = make(state);
    m.dhcp.message('DISCOVER', 'offer');
    m.dhcp.message('DISCOVER', 'offer');
    m.dhcp.message('REQUEST', 'ack-selecting');
    m.dhcp.message('REQUEST', 'ack-renew');
    m.dhcp.message('type-42', 'ignored');
    m.dhcp.malformed();
    const ev = { peer: '127.0.0.1:1', file: 'f', blksize: 512, windowsize: 1, tsize: null, ms: 1 };
    m.tftp.transfer({ ...ev, bytes: 1000, outcome: 'ok', retransmits: 2 });
    m.tftp.transfer({ ...ev, bytes: 0, outcome: 'not-found' });
    m.tftp.transfer({ ...ev, bytes: 0, outcome: 'aborted-probe' });
    m.tftp.watch({ stats: { active: 4 } });
    m.http.fetch('ipxe', 200, 828);
    m.http.fetch('file', 206, 1000);
    m.http.fetch('file', 206, 24);
    let p = parseExposition(m.registry.render());
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(p, name, labels);
    expect(v('sidereal_dhcp_packets_total', { type: 'DISCOVER', outcome: 'offer' })).toBe(2);
    expect(v('sidereal_dhcp_packets_total', { type: 'REQUEST', outcome: 'ack' })).toBe(2);
    expect(v('sidereal_dhcp_packets_total', { type: 'other', outcome: 'ignored' })).toBe(1);
    expect(v('sidereal_dhcp_packets_total', { type: 'malformed', outcome: 'malformed' })).toBe(1);
    expect(v('sidereal_dhcp_leases_active')).toBe(2);
    expect(v('sidereal_tftp_transfers_total', { outcome: 'ok' })).toBe(1);
    expect(v('sidereal_tftp_transfers_total', { outcome: 'not-found' })).toBe(1);
    expect(v('sidereal_tftp_transfers_total', { outcome: 'aborted-probe' })).toBe(1);
    expect(v('sidereal_tftp_transfers_total', { outcome: 'timeout' })).toBe(0);
    expect(v('sidereal_tftp_bytes_total')).toBe(1000);
    expect(v('sidereal_tftp_retransmits_total')).toBe(2);
    expect(v('sidereal_tftp_active_sessions')).toBe(4);
    expect(v('sidereal_http_boot_fetches_total', { kind: 'ipxe', status: '200' })).toBe(1);
    expect(v('sidereal_http_boot_fetches_total', { kind: 'file', status: '206' })).toBe(2);
    expect(v('sidereal_http_boot_bytes_total')).toBe(1852);
    expect(v('sidereal_machines', { state: 'pxelinux' })).toBe(3);
    expect(v('sidereal_machines', { state: 'ipxe' })).toBe(1);
    expect(v('sidereal_build_info', { version: '1.2.3' })).toBe(1);
    const start = v('process_start_time_seconds')!;
    expect(Math.abs(start - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
    expect(p.get('sidereal_dhcp_packets_total')!.type).toBe('counter');
    expect(p.get('sidereal_machines')!.type).toBe('gauge');

    // the inventory callbacks are read at each scrape
    state.leases = 5;
    state.machines = [{ state: 'registered-no-lease', count: 9 }];
    p = parseExposition(m.registry.render());
    expect(v('sidereal_dhcp_leases_active')).toBe(5);
    expect(v('sidereal_machines', { state: 'registered-no-lease' })).toBe(9);
    expect(v('sidereal_machines', { state: 'pxelinux' })).toBeUndefined();
  });

  it('the version defaults to package.json', () => {
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    const m = createSiderealMetrics({ activeLeases: () => 0, machinesByState: () => [] });
    expect(m.registry.render()).toContain(`sidereal_build_info{version="${packageVersion()}"} 1\n`);
  });
});

describe('GET /metrics', () => {
  it('serves the exposition with the 0.0.4 content type', async () => {
    const m = createSiderealMetrics({ activeLeases: () => 1, machinesByState: () => [{ state: 'pxelinux', count: 2 }], version: 'test' });
    m.dhcp.message('DISCOVER', 'offer');
    const app = Fastify({ logger: false });
    registerMetricsRoute(app, m);
    try {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      const p = parseExposition(res.body);
      expect(sampleValue(p, 'sidereal_dhcp_packets_total', { type: 'DISCOVER', outcome: 'offer' })).toBe(1);
      expect(sampleValue(p, 'sidereal_dhcp_leases_active')).toBe(1);
      expect(sampleValue(p, 'sidereal_machines', { state: 'pxelinux' })).toBe(2);
      for (const name of ['sidereal_dhcp_packets_total', 'sidereal_dhcp_leases_active', 'sidereal_tftp_transfers_total', 'sidereal_tftp_bytes_total',
        'sidereal_tftp_active_sessions', 'sidereal_http_boot_fetches_total', 'sidereal_http_boot_bytes_total', 'sidereal_machines',
        'sidereal_build_info', 'process_start_time_seconds']) {
        expect(p.has(name), name).toBe(true);
      }
      // scrape-time values: a second scrape sees new counts
      m.dhcp.message('DISCOVER', 'offer');
      const again = await app.inject({ method: 'GET', url: '/metrics' });
      expect(sampleValue(parseExposition(again.body), 'sidereal_dhcp_packets_total', { type: 'DISCOVER', outcome: 'offer' })).toBe(2);
    } finally {
      await app.close();
    }
  });
});
