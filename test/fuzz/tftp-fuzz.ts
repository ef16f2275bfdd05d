/**
 * TFTP fuzzer: datagrams over loopback into a real TFTP server (the listener
 * and the native pump's session ports), from eight client sockets. Sources,
 * interleaved:
 *   - mutations of the real RRQ/OACK/ERROR packets captured in the lab
 *     (test/fixtures/tftp, from shared/captures);
 *   - structured packets from fast-check arbitraries: requests for real
 *     files, traversal names and garbage, every option with good and bad
 *     values, ACKs, ERRORs and DATA;
 *   - raw random bytes;
 * and, once sessions are open, mutated ACKs and garbage sprayed at their
 * ports. Every reply is decoded by the codec (a reply the codec rejects is a
 * violation) and kept for tshark. Sessions time out fast (30 ms, 1 retry) so
 * the fuzz does not fill the session table.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { resolveStatic } from '../../server/tftp/files.js';
import { decodePacket, encodeAck, encodeError, encodeRequest, type OptionList } from '../../server/tftp/packet.js';
import { startTftpServer, type TftpServer } from '../../server/tftp/server.js';
import { loadCaptures } from '../helpers/dhcp-packets.js';
import { heapMiB, mutate, Rng } from './mutate.js';
import type { PcapWriter } from './tshark.js';

export interface TftpFuzzStats {
  fed: number;
  toSessions: number;
  replies: Record<string, number>;
  violations: string[];
  heap: number[];
  /** Process RSS at the same points, MiB: the native pump's buffers are not on the JS heap. */
  rss: number[];
  server: TftpServer['stats'];
  /** Sessions still open 5 s after the last datagram: a fuzzed RRQ may negotiate `timeout` up to 255 s (RFC 2349); close() ends them. */
  openAfter: number;
}

const FILES = ['pxelinux.0', 'big.bin', 'pxelinux.cfg/default', 'efi64/syslinux.efi', 'menu/01-52-54-00-77-00-10'];
const NAMES = [
  ...FILES, '../etc/passwd', '/etc/passwd', '..\\..\\etc\\passwd', 'pxelinux.cfg/../../x', '%2e%2e/etc/passwd',
  'a'.repeat(300), 'efi64/', '.', '', 'PXELINUX.0', 'pxelinux.0\0x',
];
const OPTION_NAMES = ['blksize', 'tsize', 'timeout', 'windowsize', 'BLKSIZE', 'multicast', 'rollover', 'x'];
const OPTION_VALUES = ['0', '1', '7', '8', '512', '1468', '65464', '65465', '99999999999', '-1', '0x10', '', '16', '255', '256', 'abc'];

const arbOptions: fc.Arbitrary<OptionList> = fc.array(
  fc.tuple(fc.oneof(fc.constantFrom(...OPTION_NAMES), fc.string({ maxLength: 12 })), fc.oneof(fc.constantFrom(...OPTION_VALUES), fc.string({ maxLength: 12 }))),
  { maxLength: 6 },
).map((o) => o.map(([n, v]) => [n.replace(/\0/g, ''), v.replace(/\0/g, '')] as [string, string]));

/** A datagram a client, a broken firmware or an attacker might send to port 69. */
export const arbTftp: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    op: fc.constantFrom<'RRQ' | 'WRQ'>('RRQ', 'RRQ', 'RRQ', 'WRQ'),
    name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FILES) }, { weight: 2, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) })
      .map((s) => s.replace(/\0/g, '') || 'x'),
    mode: fc.oneof({ weight: 5, arbitrary: fc.constant('octet') }, { weight: 1, arbitrary: fc.constantFrom('OCTET', 'netascii', 'mail') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) })
      .map((s) => s.replace(/\0/g, '') || 'octet'),
    options: arbOptions,
  }).map((r) => encodeRequest(r.op, r.name, r.mode, r.options)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map(encodeAck) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.string({ maxLength: 30 })).map(([c, m]) => encodeError(c, m.replace(/\0/g, ''))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
);

export async function tftpFuzzRoot(dir: string): Promise<void> {
  mkdirSync(join(dir, 'pxelinux.cfg'), { recursive: true });
  mkdirSync(join(dir, 'efi64'), { recursive: true });
  writeFileSync(join(dir, 'pxelinux.0'), Buffer.alloc(42_430, 1));
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(2 << 20, 2));
  writeFileSync(join(dir, 'pxelinux.cfg', 'default'), 'DEFAULT local\n');
  writeFileSync(join(dir, 'efi64', 'syslinux.efi'), Buffer.alloc(171_456, 3));
}

function bind(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A plain lock-step download at blksize 1468 (bytes received, -1 on a stall): the server still serves after the fuzz. */
async function download(port: number, file: string): Promise<number> {
  const c = await bind();
  try {
    let total = 0;
    let expect = 1;
    const done = new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 10_000);
      c.on('message', (msg, rinfo) => {
        const d = decodePacket(msg);
        if (!d.ok) return;
        if (d.packet.op === 'OACK') c.send(encodeAck(0), rinfo.port, '127.0.0.1');
        if (d.packet.op !== 'DATA') return;
        if (d.packet.block === (expect & 0xffff)) {
          total += d.packet.data.length;
          expect++;
        }
        c.send(encodeAck(d.packet.block), rinfo.port, '127.0.0.1');
        if (d.packet.data.length < 1468 && d.packet.block === ((expect - 1) & 0xffff)) {
          clearTimeout(timer);
          resolve(total);
        }
      });
    });
    c.send(encodeRequest('RRQ', file, 'octet', [['blksize', '1468']]), port, '127.0.0.1');
    return await done;
  } finally {
    c.close();
  }
}

/**
 * Send `packets` datagrams (seeded) to a fresh server over `root` and check
 * every reply; every `sampleEvery`th goes to `pcap` for tshark. The server is closed at the end.
 */
export async function fuzzTftp(root: string, packets: number, seed: number, pcap: PcapWriter, sampleEvery = 1): Promise<TftpFuzzStats> {
  const server = await startTftpServer({
    address: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), timeoutMs: 30, retries: 1,
    resolve: (p) => (p.startsWith('menu/') ? { kind: 'virtual', content: Buffer.from(`DEFAULT ${p}\n`.repeat(40)) } : resolveStatic(root, p)),
  });
  const rng = new Rng(seed);
  const seeds = loadCaptures('tftp').map((c) => c.bytes);
  const stats: TftpFuzzStats = { fed: 0, toSessions: 0, replies: {}, violations: [], heap: [], rss: [], server: server.stats, openAfter: 0 };
  const clients = await Promise.all(Array.from({ length: 8 }, bind));
  /** Session ports seen in replies, most recent last (a few kept). */
  const sessionPorts: number[] = [];
  let replyCount = 0;
  for (const c of clients) {
    c.on('message', (msg, rinfo) => {
      replyCount++;
      const d = decodePacket(msg);
      if (!d.ok) {
        stats.violations.push(`reply from port ${rinfo.port} the codec rejects: ${d.error.problem} ${d.error.detail} (${msg.subarray(0, 32).toString('hex')})`);
        return;
      }
      stats.replies[d.packet.op] = (stats.replies[d.packet.op] ?? 0) + 1;
      if (!['OACK', 'DATA', 'ERROR'].includes(d.packet.op)) stats.violations.push(`server sent ${d.packet.op}`);
      if (rinfo.port !== server.port && (d.packet.op === 'OACK' || d.packet.op === 'DATA')) {
        sessionPorts.push(rinfo.port);
        if (sessionPorts.length > 16) sessionPorts.shift();
      }
      // Port 69 as the source so tshark's TFTP dissector takes every reply (it tracks conversations by the request otherwise).
      if (replyCount % sampleEvery === 0) pcap.add({ payload: msg, srcPort: 69, dstPort: 40000, src: '10.77.0.1' });
    });
  }
  let structured: Buffer[] = [];
  let batch = 0;
  const quarter = Math.max(1, Math.floor(packets / 4));
  try {
    for (let i = 0; i < packets; i++) {
      if (i > 0 && i % quarter === 0) {
        stats.heap.push(heapMiB());
        stats.rss.push(process.memoryUsage.rss() / 1024 / 1024);
      }
      let bytes: Buffer;
      const pick = rng.int(10);
      if (pick < 3) bytes = mutate(rng, rng.pick(seeds));
      else if (pick < 8) {
        if (structured.length === 0) structured = fc.sample(arbTftp, { seed: seed + batch++, numRuns: 500 });
        bytes = structured.pop()!;
        if (rng.chance(0.2)) bytes = mutate(rng, bytes);
      } else bytes = rng.bytes(rng.int(600));
      let port = server.port;
      if (sessionPorts.length && rng.chance(0.3)) {
        port = rng.pick(sessionPorts);
        stats.toSessions++;
        if (rng.chance(0.5)) bytes = mutate(rng, encodeAck(rng.int(8)));
      }
      rng.pick(clients).send(bytes, port, '127.0.0.1');
      stats.fed++;
      // Let the server keep up (UDP drops under a flood would only hide inputs).
      if (i % 32 === 31) await turn();
      if (i % 2048 === 2047) await new Promise((r) => setTimeout(r, 5));
      if (stats.violations.length > 50) break;
    }
    // Let every session time out or finish.
    for (let i = 0; i < 200 && server.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 25));
    stats.openAfter = server.stats.active;
    const got = await download(server.port, 'big.bin');
    if (got !== 2 << 20) stats.violations.push(`after the fuzz a clean download of big.bin got ${got} bytes`);
    stats.heap.push(heapMiB());
    stats.server = { ...server.stats };
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
  return stats;
}
