/**
 * DHCP load generator (issue 6), run as its own process in the client
 * namespace: it plays a relay agent (binds giaddr:67, where servers send
 * relayed replies) and many clients behind it. Each exchange is a full
 * DISCOVER -> OFFER -> REQUEST -> ACK for one MAC, built and parsed with the
 * project's codec (server/dhcp/packet.ts).
 *
 *   ip netns exec NS node dist/bench/lib/dhcp-loadgen.js '<json LoadSpec>'
 *
 * Modes: `window` keeps a fixed number of exchanges in flight (throughput at
 * saturation); `paced` starts exchanges at a fixed rate, open loop (latency).
 * A packet without an answer in `timeoutMs` is sent again (a loss, counted);
 * after `retries` resends the exchange fails. Prints one JSON line (LoadResult).
 * Every loop is bounded: by the exchange count and by `deadlineMs`.
 */
import dgram from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { decodePacket, encodePacket, type DhcpPacket, type DhcpOption } from '../../server/dhcp/packet.js';
import { isMain } from './report.js';

export interface LoadSpec {
  /** Server address (unicast, port 67). */
  server: string;
  /** The relay's address: giaddr, and the address the generator binds port 67 on. */
  relay: string;
  count: number;
  /** MAC i is `02:<prefix>:<i as 4 bytes>`; the same scheme as macFor(). */
  macPrefix: number;
  /** First MAC index (so a run can use MACs another run registered). */
  first?: number;
  mode: 'window' | 'paced';
  /** window: exchanges in flight. */
  window?: number;
  /** paced: exchanges started per second. */
  rate?: number;
  /** paced: at most this many exchanges in flight; a start beyond it is counted as skipped. */
  maxInFlight?: number;
  timeoutMs?: number;
  retries?: number;
  /** Whole run bound. */
  deadlineMs?: number;
  /** Socket receive buffer (bytes). */
  rcvbuf?: number;
}

export interface LatencySummary { n: number; p50: number; p90: number; p99: number; max: number; mean: number }

export interface LoadResult {
  completed: number;
  failed: number;
  skipped: number;
  /** Packets sent again after a timeout. */
  retransmits: number;
  naks: number;
  /** Replies that matched no exchange in flight (late duplicates after a resend). */
  stray: number;
  seconds: number;
  exchangesPerSecond: number;
  /** First DISCOVER sent -> ACK received, ms (includes resends). */
  exchange: LatencySummary;
  /** Each reply: DISCOVER -> OFFER and REQUEST -> ACK, ms, exchanges without a resend only. */
  offer: LatencySummary;
  ack: LatencySummary;
  /** Distinct addresses handed out (must equal `completed`). */
  distinctIps: number;
  /**
   * The generator's own event-loop delay, ms: a stall here delays both the
   * sends and the receive timestamps, so a latency tail it matches is the
   * client's, not the server's.
   */
  clientLoopDelay: { p99: number; max: number };
}

export function macFor(prefix: number, i: number): string {
  const b = [2, prefix & 255, (i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function summarize(xs: number[]): LatencySummary {
  if (xs.length === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const s = Float64Array.from(xs).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  let sum = 0;
  for (const x of s) sum += x;
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: s[s.length - 1]!, mean: sum / s.length };
}

const PARAMS = Buffer.from([1, 3, 6, 12, 15, 28, 43, 60, 66, 67]);
const VENDOR = Buffer.from('PXEClient:Arch:00000:UNDI:002001');
const ARCH_BIOS = Buffer.from([0, 0]);
const ipBuf = (ip: string) => Buffer.from(ip.split('.').map(Number));

function request(mac: string, xid: number, relay: string, type: 1 | 3, offered?: { ip: string; serverId: string }): Buffer {
  const chaddr = Buffer.alloc(16);
  mac.split(':').forEach((h, i) => { chaddr[i] = parseInt(h, 16); });
  const options: DhcpOption[] = [{ code: 53, data: Buffer.from([type]) }];
  if (offered) {
    options.push({ code: 50, data: ipBuf(offered.ip) }, { code: 54, data: ipBuf(offered.serverId) });
  }
  options.push({ code: 57, data: Buffer.from([0x05, 0xc0]) }, { code: 93, data: ARCH_BIOS }, { code: 60, data: VENDOR }, { code: 55, data: PARAMS });
  const p: DhcpPacket = {
    op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: relay,
    chaddr, sname: '', file: '', options,
  };
  return encodePacket(p);
}

interface Exchange {
  i: number;
  mac: string;
  xid: number;
  stage: 'discover' | 'request';
  started: number;
  sentAt: number;
  tries: number;
  resent: boolean;
  offerMs?: number;
  packet: Buffer;
  timer?: NodeJS.Timeout;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const timeoutMs = spec.timeoutMs ?? 1000;
  const retries = spec.retries ?? 3;
  const deadline = Date.now() + (spec.deadlineMs ?? 120_000);
  const first = spec.first ?? 0;
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: spec.rcvbuf ?? 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: 67, address: spec.relay }, () => { sock.off('error', reject); resolve(); });
  });

  const inFlight = new Map<number, Exchange>(); // xid -> exchange
  const exchangeMs: number[] = [];
  const offerMs: number[] = [];
  const ackMs: number[] = [];
  const ips = new Set<string>();
  let completed = 0, failed = 0, skipped = 0, retransmits = 0, naks = 0, stray = 0, started = 0;
  let onIdle: (() => void) | undefined;
  const xidBase = (Math.random() * 0x7fff0000) >>> 0;

  const send = (ex: Exchange) => {
    ex.sentAt = performance.now();
    sock.send(ex.packet, 67, spec.server);
    clearTimeout(ex.timer);
    ex.timer = setTimeout(() => onTimeout(ex), timeoutMs);
  };
  const finish = (ex: Exchange, ok: boolean) => {
    clearTimeout(ex.timer);
    inFlight.delete(ex.xid);
    if (ok) completed++; else failed++;
    next();
  };
  const onTimeout = (ex: Exchange) => {
    if (!inFlight.has(ex.xid)) return;
    if (ex.tries >= retries) { finish(ex, false); return; }
    ex.tries++;
    ex.resent = true;
    retransmits++;
    send(ex);
  };
  const start = (i: number) => {
    const mac = macFor(spec.macPrefix, first + i);
    const xid = (xidBase + i) >>> 0;
    const ex: Exchange = { i, mac, xid, stage: 'discover', started: performance.now(), sentAt: 0, tries: 0, resent: false, packet: request(mac, xid, spec.relay, 1) };
    inFlight.set(xid, ex);
    started++;
    send(ex);
  };

  sock.on('message', (msg) => {
    const now = performance.now();
    let p: DhcpPacket;
    try { p = decodePacket(msg); } catch { stray++; return; }
    const ex = inFlight.get(p.xid);
    const type = p.options.find((o) => o.code === 53)?.data[0];
    if (!ex) { stray++; return; }
    if (ex.stage === 'discover' && type === 2) {
      if (!ex.resent) ex.offerMs = now - ex.sentAt;
      const sid = p.options.find((o) => o.code === 54)?.data;
      const serverId = sid && sid.length === 4 ? [...sid].join('.') : spec.server;
      ex.stage = 'request';
      ex.tries = 0;
      ex.packet = request(ex.mac, ex.xid, spec.relay, 3, { ip: p.yiaddr, serverId });
      send(ex);
    } else if (ex.stage === 'request' && type === 5) {
      if (!ex.resent) {
        if (ex.offerMs !== undefined) offerMs.push(ex.offerMs);
        ackMs.push(now - ex.sentAt);
      }
      exchangeMs.push(now - ex.started);
      ips.add(p.yiaddr);
      finish(ex, true);
    } else if (ex.stage === 'request' && type === 6) {
      naks++;
      finish(ex, false);
    } else {
      stray++; // a duplicate OFFER after a resend, say
    }
  });

  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const t0 = performance.now();
  let next: () => void = () => {};
  const done = new Promise<void>((resolve) => { onIdle = resolve; });
  const checkIdle = () => { if ((started >= spec.count || Date.now() >= deadline) && inFlight.size === 0) onIdle?.(); };
  let pacer: NodeJS.Timeout | undefined;

  if (spec.mode === 'window') {
    const window = Math.max(1, spec.window ?? 32);
    next = () => {
      while (started < spec.count && inFlight.size < window && Date.now() < deadline) start(started);
      checkIdle();
    };
    next();
  } else {
    const rate = Math.max(1, spec.rate ?? 1000);
    const cap = spec.maxInFlight ?? 5000;
    next = checkIdle;
    let scheduled = 0; // exchanges due so far (started or skipped)
    const tick = () => {
      const due = Math.min(spec.count, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (scheduled < due) {
        if (inFlight.size >= cap) { skipped++; started++; } else start(started);
        scheduled++;
      }
      if (scheduled >= spec.count || Date.now() >= deadline) { clearInterval(pacer); started = Math.max(started, spec.count); checkIdle(); }
    };
    pacer = setInterval(tick, 1);
    tick();
  }

  const guard = setTimeout(() => onIdle?.(), Math.max(0, deadline - Date.now()) + timeoutMs * (retries + 1));
  await done;
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(guard);
  clearInterval(pacer);
  loopDelay.disable();
  for (const ex of inFlight.values()) { clearTimeout(ex.timer); failed++; }
  inFlight.clear();
  sock.close();
  return {
    completed, failed, skipped, retransmits, naks, stray, seconds,
    exchangesPerSecond: completed / seconds,
    exchange: summarize(exchangeMs), offer: summarize(offerMs), ack: summarize(ackMs), distinctIps: ips.size,
    clientLoopDelay: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  };
}

if (isMain(import.meta.url)) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  const r = await runLoad(spec);
  process.stdout.write(JSON.stringify(r) + '\n');
}
