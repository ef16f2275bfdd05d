/**
 * DHCP fuzzer: packets into the codec and the RFC 2131 handler over the real
 * SQLite inventory backend (as `serve` wires them, group commit included),
 * every reply encoded, decoded again and checked against the RFC rules a
 * client depends on. Three sources, interleaved:
 *   - mutations of the real firmware packets captured in the lab
 *     (test/fixtures/dhcp, from shared/captures);
 *   - structured requests from fast-check arbitraries: every message type,
 *     relayed or not, with PXE options, odd lengths and unknown options,
 *     over a small set of MACs so leases, declines and releases interact;
 *   - raw random bytes.
 * A violation is a string naming the packet (source, index) and the rule.
 */
import fc from 'fast-check';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { InventoryDhcpBackend } from '../../server/daemon/backend.js';
import { MessageType, OPT, getIp, getOption, messageType } from '../../server/dhcp/options.js';
import { decodePacket, DhcpDecodeError, encodePacket, MIN_PACKET, type DhcpOption, type DhcpPacket } from '../../server/dhcp/packet.js';
import { inSubnet, ZERO } from '../../server/net/ipv4.js';
import { loadCaptures } from '../helpers/dhcp-packets.js';
import { addLabRoot, makeFixture, type Fixture } from '../helpers/fixture.js';
import { heapMiB, mutate, Rng } from './mutate.js';
import type { PcapWriter } from './tshark.js';

const US = '10.77.0.1';
const RELAY = '10.88.0.1';
/** Registered machines with a reserved address: nobody else may ever be offered it. */
const RESERVED = new Map([
  ['52:54:00:77:00:10', '10.77.0.45'], // the captures' MAC
  ['52:54:00:fe:00:01', '10.77.0.20'],
  ['52:54:00:fe:00:02', '10.77.0.21'],
]);
const MACS = [...RESERVED.keys(), ...Array.from({ length: 40 }, (_, i) => `52:54:00:fa:00:${i.toString(16).padStart(2, '0')}`)];

export interface DhcpFuzzStats {
  fed: number;
  malformed: number;
  handled: number;
  replies: Record<string, number>;
  violations: string[];
  /** Heap after GC at each quarter of the run, MiB. */
  heap: number[];
}

const ip = (s: string) => Buffer.from(s.split('.').map(Number));
const macBytes = (mac: string) => {
  const b = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(b);
  return b;
};

const arbIp = fc.oneof(
  fc.constantFrom(ZERO, '255.255.255.255', US, '10.77.0.100', '10.77.0.101', '10.77.0.45', '10.77.0.150', '10.77.0.20', RELAY, '10.88.0.55'),
  fc.ipV4(),
);
const arbBytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const arbOption = (code: number, data: fc.Arbitrary<Buffer>) => fc.option(data.map((d): DhcpOption => ({ code, data: d })), { nil: undefined });

/** A request as a client, a relay or a broken firmware might send it. */
export const arbRequest: fc.Arbitrary<DhcpPacket> = fc.record({
  type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 1, 3, 3, 3, 4, 7, 8) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  mac: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...MACS).map(macBytes) }, { weight: 1, arbitrary: arbBytes(16).map((b) => { const c = Buffer.alloc(16); b.copy(c); return c; }) }),
  xid: fc.integer({ min: 0, max: 0xffffffff }),
  flags: fc.oneof(fc.constantFrom(0, 0x8000), fc.integer({ min: 0, max: 0xffff })),
  secs: fc.integer({ min: 0, max: 0xffff }),
  hops: fc.integer({ min: 0, max: 255 }),
  ciaddr: arbIp,
  giaddr: fc.oneof({ weight: 4, arbitrary: fc.constant(ZERO) }, { weight: 2, arbitrary: fc.constant(RELAY) }, { weight: 1, arbitrary: arbIp }),
  requested: arbOption(OPT.requestedIp, fc.oneof({ weight: 5, arbitrary: arbIp.map(ip) }, { weight: 1, arbitrary: arbBytes(6) })),
  serverId: arbOption(OPT.serverId, fc.oneof({ weight: 5, arbitrary: fc.constantFrom(US, US, '10.77.0.9').map(ip) }, { weight: 1, arbitrary: arbBytes(6) })),
  arch: arbOption(93, fc.oneof(fc.constantFrom(0, 6, 7, 9, 10, 11, 16, 0xffff).map((a) => Buffer.from([a >> 8, a & 255])), arbBytes(5))),
  vendor: arbOption(60, fc.oneof(fc.constantFrom('PXEClient:Arch:00000:UNDI:002001', 'PXEClient:Arch:00007:UNDI:003000', 'HTTPClient:Arch:00016').map((s) => Buffer.from(s)), arbBytes(40))),
  user: arbOption(77, fc.oneof(fc.constant(Buffer.from('iPXE')), arbBytes(20))),
  hostname: arbOption(OPT.hostname, fc.oneof(fc.string({ maxLength: 70 }).map((s) => Buffer.from(s)), arbBytes(70))),
  params: arbOption(55, arbBytes(40)),
  clientId: arbOption(61, arbBytes(20)),
  ipxe: arbOption(175, arbBytes(30)),
  relayInfo: arbOption(82, arbBytes(30)),
  extra: fc.array(fc.record({ code: fc.integer({ min: 1, max: 254 }), data: arbBytes(300) }), { maxLength: 4 }),
  file: fc.string({ maxLength: 40 }).map((s) => s.replace(/\0/g, '')),
}).map((r) => {
  const options: DhcpOption[] = [];
  if (r.type !== 0) options.push({ code: OPT.messageType, data: Buffer.from([r.type]) });
  for (const o of [r.requested, r.serverId, r.arch, r.vendor, r.user, r.hostname, r.params, r.clientId, r.ipxe, r.relayInfo]) if (o) options.push(o);
  options.push(...r.extra.filter((o) => o.code !== OPT.messageType));
  return {
    op: 1, htype: 1, hlen: 6, hops: r.hops, xid: r.xid, secs: r.secs, flags: r.flags, ciaddr: r.ciaddr, yiaddr: ZERO,
    siaddr: ZERO, giaddr: r.giaddr, chaddr: r.mac, sname: '', file: r.file, options,
  };
});

export function dhcpFixture(): Fixture {
  const f = makeFixture((d) => {
    (d.dhcp as Record<string, unknown>).relays = [{ subnet: '10.88.0.0/24', router: RELAY, pool: { start: '10.88.0.50', end: '10.88.0.60' } }];
  });
  addLabRoot(f);
  for (const [mac, addr] of RESERVED) f.inv.machines.add(mac, { ipv4: addr, root: 'lab' });
  return f;
}

export function dhcpHandler(f: Fixture): { handler: DhcpHandler; backend: InventoryDhcpBackend } {
  const c = f.config;
  const backend = new InventoryDhcpBackend(f.inv, c);
  const handler = new DhcpHandler({
    serverId: c.serverAddress, subnet: c.dhcp.subnet, router: c.dhcp.router, dns: c.dhcp.dns, domain: c.dhcp.domain,
    leaseTime: c.dhcp.leaseTime, pool: c.dhcp.pool, unknownClients: c.dhcp.unknownClients, relays: c.dhcp.relays, backend,
  });
  return { handler, backend };
}

/** The RFC 2131 rules a reply to `q` must keep; returns what it broke. */
export function replyProblems(q: DhcpPacket, r: DhcpPacket, encoded: Buffer, to: { address: string; port: number }): string[] {
  const out: string[] = [];
  const qt = messageType(q);
  const rt = messageType(r);
  if (r.op !== 2) out.push(`op ${r.op}, not BOOTREPLY`);
  if (r.xid !== q.xid) out.push('xid not echoed');
  if (r.htype !== q.htype || r.hlen !== q.hlen || !r.chaddr.equals(q.chaddr)) out.push('htype/hlen/chaddr not echoed');
  if (r.giaddr !== q.giaddr) out.push('giaddr not echoed');
  // RFC 2131 4.3.2: a NAK through a relay gets the broadcast bit, so the relay broadcasts it.
  const flags = rt === MessageType.NAK && q.giaddr !== ZERO ? q.flags | 0x8000 : q.flags;
  if (r.flags !== flags) out.push('flags not echoed');
  if (encoded.length < MIN_PACKET) out.push(`${encoded.length} bytes, under the BOOTP minimum ${MIN_PACKET}`);
  if (getIp(r, OPT.serverId) !== US) out.push('option 54 is not our address');
  const lease = r.options.some((o) => o.code === OPT.leaseTime);
  switch (rt) {
    case MessageType.OFFER:
      if (qt !== MessageType.DISCOVER) out.push(`OFFER to a ${qt}`);
      if (r.yiaddr === ZERO || !lease) out.push('OFFER without address or lease time');
      break;
    case MessageType.ACK:
      if (qt === MessageType.INFORM) {
        if (r.yiaddr !== ZERO || lease) out.push('ACK to INFORM with an address or a lease time (RFC 2131 4.3.5)');
      } else if (qt !== MessageType.REQUEST) out.push(`ACK to a ${qt}`);
      else if (r.yiaddr === ZERO || !lease) out.push('ACK without address or lease time');
      break;
    case MessageType.NAK:
      if (qt !== MessageType.REQUEST) out.push(`NAK to a ${qt}`);
      if (r.yiaddr !== ZERO || r.ciaddr !== ZERO || r.siaddr !== ZERO) out.push('NAK with an address');
      // RFC 2131 table 3, plus 82 (RFC 3046 2.2: the relay agent information is echoed in every reply).
      for (const o of r.options) if (![OPT.messageType, OPT.serverId, 56, 61, 82].includes(o.code)) out.push(`NAK carries option ${o.code} (RFC 2131 table 3)`);
      break;
    default:
      out.push(`reply message type ${rt}`);
  }
  if (r.yiaddr !== ZERO) {
    const mac = [...r.chaddr.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
    for (const [owner, addr] of RESERVED) if (addr === r.yiaddr && owner !== mac) out.push(`${owner}'s reserved ${addr} given to ${mac}`);
    const served = inSubnet(r.yiaddr, { network: '10.77.0.0', prefix: 24 }) || inSubnet(r.yiaddr, { network: '10.88.0.0', prefix: 24 });
    if (!served) out.push(`address ${r.yiaddr} outside every served subnet`);
  }
  if (q.giaddr !== ZERO && (to.address !== q.giaddr || to.port !== 67)) out.push(`relayed request answered to ${to.address}:${to.port}, not the relay`);
  const echoed = getOption(r, 82);
  if (echoed) {
    if (q.giaddr === ZERO) out.push('option 82 in the reply to a request that did not come through a relay');
    if (!echoed.equals(getOption(q, 82) ?? Buffer.alloc(0))) out.push('option 82 not echoed as the relay sent it (RFC 3046 2.2)');
  }
  return out;
}

/**
 * What tshark is given: the reply without the relay agent option it echoes. That option's
 * sub-options are the relay's words, sent back byte for byte (RFC 3046 2.2; replyProblems
 * checks it is the relay's, verbatim, and made of whole sub-options): tshark judging their
 * contents (a 6-byte "access technology type") would judge the fuzzed relay, not us.
 */
function forTshark(r: DhcpPacket, encoded: Buffer): Buffer {
  return r.options.some((o) => o.code === 82) ? encodePacket({ ...r, options: r.options.filter((o) => o.code !== 82) }) : encoded;
}

/**
 * Feed `packets` packets (seeded; the same seed replays the same run);
 * every `sampleEvery`th reply goes to `pcap` for tshark.
 * Leases are staged and flushed every few packets, as the server does per
 * event-loop turn.
 */
export function fuzzDhcp(f: Fixture, packets: number, seed: number, pcap: PcapWriter, sampleEvery = 1): DhcpFuzzStats {
  const { handler, backend } = dhcpHandler(f);
  const rng = new Rng(seed);
  const captures = loadCaptures().map((c) => c.bytes);
  const stats: DhcpFuzzStats = { fed: 0, malformed: 0, handled: 0, replies: {}, violations: [], heap: [] };
  let structured: DhcpPacket[] = [];
  let batch = 0;
  let now = 1_800_000_000_000;
  let replies = 0;
  const quarter = Math.max(1, Math.floor(packets / 4));
  for (let i = 0; i < packets; i++) {
    if (i > 0 && i % quarter === 0) stats.heap.push(heapMiB());
    let bytes: Buffer;
    let source: string;
    const pick = rng.int(10);
    if (pick < 3) {
      source = 'capture-mutation';
      bytes = mutate(rng, rng.pick(captures));
    } else if (pick < 9) {
      source = 'structured';
      if (structured.length === 0) structured = fc.sample(arbRequest, { seed: seed + batch++, numRuns: 500 });
      bytes = encodePacket(structured.pop()!);
      if (rng.chance(0.2)) bytes = mutate(rng, bytes);
    } else {
      source = 'random';
      bytes = rng.bytes(rng.int(600));
    }
    stats.fed++;
    now += rng.int(3000);
    let q: DhcpPacket;
    try {
      q = decodePacket(bytes);
    } catch (err) {
      if (!(err instanceof DhcpDecodeError)) stats.violations.push(`#${i} (${source}): decoder threw ${(err as Error).name}: ${(err as Error).message}`);
      stats.malformed++;
      continue;
    }
    try {
      const out = handler.handleDetailed(q, { receivedOn: q.giaddr !== ZERO ? 'relay' : 'interface', now, deferLeaseWrites: true });
      stats.handled++;
      if (i % 8 === 7) backend.flush();
      if (!out.result) continue;
      const { reply, to } = out.result;
      const encoded = encodePacket(reply);
      const again = decodePacket(encoded);
      const type = String(messageType(again));
      stats.replies[type] = (stats.replies[type] ?? 0) + 1;
      for (const p of replyProblems(q, again, encoded, to)) stats.violations.push(`#${i} (${source}, ${out.log.type} from ${out.log.mac}): ${p}`);
      if (++replies % sampleEvery === 0) pcap.add({ payload: forTshark(again, encoded), srcPort: 67, dstPort: to.port, src: US, dst: to.address });
    } catch (err) {
      stats.violations.push(`#${i} (${source}): handler threw ${(err as Error).stack ?? String(err)}`);
    }
    if (stats.violations.length > 50) break;
  }
  backend.flush();
  stats.heap.push(heapMiB());
  return stats;
}
