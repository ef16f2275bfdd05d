/**
 * The metrics hooks driven through the real servers, on 127.0.0.1 only: the
 * DHCP server gets relayed requests (giaddr 127.0.0.1, so every reply is a
 * unicast to 127.0.0.1:67 and nothing is broadcast), the TFTP server is
 * fetched from with curl.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../server/dhcp/memory-backend.js';
import { encodePacket } from '../../server/dhcp/packet.js';
import { startDhcpServer, type DhcpServer } from '../../server/dhcp/server.js';
import { parseExposition, sampleValue } from '../../server/metrics/exposition.js';
import { createSiderealMetrics, type SiderealMetrics } from '../../server/metrics/sidereal-metrics.js';
import { resolveStatic } from '../../server/tftp/files.js';
import { startTftpServer, type TftpServer } from '../../server/tftp/server.js';
import { makeRequest } from '../helpers/dhcp-packets.js';
import { makeTempRoot, writeRandomFile } from '../helpers/tftp-fixtures.js';

const HOST = '127.0.0.1';
const MAC = '52:54:00:77:00:42';
const RESERVED = '127.0.77.42';
const run = promisify(execFile);
const logger = pino({ level: 'silent' });

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function scrape(m: SiderealMetrics) {
  return parseExposition(m.registry.render());
}

describe('DHCP metrics through the server', () => {
  let metrics: SiderealMetrics;
  let server: DhcpServer;
  let client: Socket;
  let leases = 0;

  beforeAll(async () => {
    metrics = createSiderealMetrics({ activeLeases: () => leases, machinesByState: () => [] });
    const backend = new MemoryBackend({ server: HOST, reservations: new Map([[MAC, { ipv4: RESERVED, hostname: 'metrics-node' }]]) });
    server = await startDhcpServer({
      address: HOST, port: 0, serverId: HOST, subnet: { network: '127.0.0.0', prefix: 8 },
      leaseTime: 3600, pool: { start: '127.0.77.100', end: '127.0.77.110' }, unknownClients: 'pool',
      backend, logger, metrics: metrics.dhcp,
    });
    leases = 0;
    client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, HOST, () => r()));
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  const send = (buf: Buffer) => new Promise<void>((resolve, reject) => {
    client.send(buf, server.address().port, HOST, (err) => (err ? reject(err) : resolve()));
  });

  it('counts a DISCOVER answered with an offer, an ACK, an ignored message and a malformed packet', async () => {
    const relayed = { mac: MAC, giaddr: HOST };
    await send(encodePacket(makeRequest({ ...relayed, type: 1 })));
    await until(() => server.stats.replied === 1, 'the offer');
    await send(encodePacket(makeRequest({ ...relayed, type: 3, serverId: HOST, requestedIp: RESERVED, xid: 2 })));
    await until(() => server.stats.replied === 2, 'the ack');
    // a type no server answers, and a REQUEST for another server: both silently ignored
    await send(encodePacket(makeRequest({ ...relayed, type: 42, xid: 3 })));
    await send(encodePacket(makeRequest({ ...relayed, type: 3, serverId: '127.0.0.2', requestedIp: RESERVED, xid: 4 })));
    await until(() => server.stats.dropped === 2, 'the ignored messages');
    // too short to be BOOTP, then a bad option length
    await send(Buffer.from('not a dhcp packet'));
    const bad = encodePacket(makeRequest({ ...relayed, type: 1, extra: [{ code: 54, data: Buffer.from([127, 0, 0]) }] }));
    await send(bad);
    await until(() => server.stats.malformed === 2, 'the malformed packets');
    leases = 1;

    const p = scrape(metrics);
    const v = (labels: Record<string, string>) => sampleValue(p, 'sidereal_dhcp_packets_total', labels);
    expect(v({ type: 'DISCOVER', outcome: 'offer' })).toBe(1);
    expect(v({ type: 'REQUEST', outcome: 'ack' })).toBe(1);
    expect(v({ type: 'REQUEST', outcome: 'ignored' })).toBe(1);
    expect(v({ type: 'other', outcome: 'ignored' })).toBe(1);
    expect(v({ type: 'malformed', outcome: 'malformed' })).toBe(2);
    const total = p.get('sidereal_dhcp_packets_total')!.samples.reduce((n, s) => n + s.value, 0);
    expect(total).toBe(server.stats.received);
    expect(sampleValue(p, 'sidereal_dhcp_leases_active')).toBe(1);
    // no MAC, address or xid ever becomes a label value
    for (const s of p.get('sidereal_dhcp_packets_total')!.samples) {
      expect(Object.values(s.labels).join(' ')).not.toMatch(/[0-9a-f]{2}:|127\.|0x/);
    }
  });

  it('is optional: a server without the hook serves as before', async () => {
    const backend = new MemoryBackend({ server: HOST });
    const plain = await startDhcpServer({
      address: HOST, port: 0, serverId: HOST, subnet: { network: '127.0.0.0', prefix: 8 },
      leaseTime: 3600, pool: { start: '127.0.77.100', end: '127.0.77.110' }, unknownClients: 'pool', backend, logger,
    });
    try {
      await new Promise<void>((resolve, reject) => client.send(
        encodePacket(makeRequest({ mac: '52:54:00:77:00:43', giaddr: HOST, type: 1 })), plain.address().port, HOST,
        (err) => (err ? reject(err) : resolve()),
      ));
      await until(() => plain.stats.replied === 1, 'the offer');
    } finally {
      await plain.close();
    }
  });
});

describe('TFTP metrics through the server and curl', () => {
  let metrics: SiderealMetrics;
  let server: TftpServer;
  let root: { dir: string; cleanup(): Promise<void> };
  const SIZE = 100_000;

  beforeAll(async () => {
    root = await makeTempRoot('sidereal-metrics-');
    await writeRandomFile(path.join(root.dir, 'f'), SIZE);
    metrics = createSiderealMetrics({ activeLeases: () => 0, machinesByState: () => [] });
    server = await startTftpServer({
      address: HOST, port: 0, logger,
      resolve: (p) => resolveStatic(root.dir, p),
      // the daemon keeps its own onTransfer work and adds this call
      onTransfer: (ev) => metrics.tftp.transfer(ev),
    });
    metrics.tftp.watch(server);
  });

  afterAll(async () => {
    await server?.close();
    await root?.cleanup();
  });

  it('counts transfers by outcome and the bytes sent', async () => {
    const out = path.join(root.dir, 'out');
    await run('curl', ['-sS', '--max-time', '20', '-o', out, `tftp://${HOST}:${server.port}/f`]);
    expect((await readFile(out)).length).toBe(SIZE);
    await run('curl', ['-sS', '--max-time', '20', '--tftp-blksize', '1024', '-o', out, `tftp://${HOST}:${server.port}/f`]);
    await expect(run('curl', ['-sS', '--max-time', '20', '-o', out, `tftp://${HOST}:${server.port}/missing`])).rejects.toThrow();
    await until(() => server.stats.ok === 2 && server.stats.notFound === 1, 'the transfer events');
    await writeFile(out, '');

    const p = scrape(metrics);
    const t = (outcome: string) => sampleValue(p, 'sidereal_tftp_transfers_total', { outcome });
    expect(t('ok')).toBe(2);
    expect(t('not-found')).toBe(1);
    expect(t('timeout')).toBe(0);
    expect(sampleValue(p, 'sidereal_tftp_bytes_total')).toBe(2 * SIZE);
    expect(sampleValue(p, 'sidereal_tftp_bytes_total')).toBe(server.stats.bytesSent);
    expect(sampleValue(p, 'sidereal_tftp_active_sessions')).toBe(0);
  });
});
