/**
 * Rogue DHCP detection: a second DHCP server on the provisioning segment makes nodes boot
 * from whichever answers first, at random. At start and every `intervalMs`, this sends a
 * DHCPDISCOVER (broadcast flag set, so any server broadcasts its OFFER) out of the
 * provisioning interface, from a MAC of its own that Sidereal's own server ignores; the
 * socket on port 68 stays open between probes, so a foreign server that broadcasts its
 * replies to real clients is seen too. A reply whose server identifier (option 54, else its
 * source address) is not ours is a rogue: logged at error level once per probe cycle while
 * it answers, counted in the metrics, listed by `sidereal status`.
 *
 * Only with `interface` set: without it the broadcast would leave by the routing table,
 * maybe on a network that is not the provisioning one.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { decodePacket, encodePacket, type DhcpPacket } from './packet.js';
import { getIp, getString, macOf, messageType, messageTypeName, MessageType, OPT, opt, optU8 } from './options.js';
import { boundSocketFd } from './server.js';

export interface RogueServer {
  /** Its server identifier (option 54), or the reply's source address when it gives none. */
  serverId: string;
  /** The address its replies came from (a relay's, when relayed). */
  source: string;
  firstSeen: number;
  lastSeen: number;
  replies: number;
  /** What it last answered with: the message type, the address offered, the boot file. */
  lastReply: { type: string; yiaddr: string; bootFile: string | null };
}

/**
 * What the checks have seen: it lives as long as the daemon (a config reload restarts the
 * check, not the record). `active` are those seen within `staleMs`.
 */
export class RogueServers {
  private readonly seen = new Map<string, RogueServer>();
  lastCheck: number | null = null;
  constructor(public staleMs = 30 * 60_000) {}

  note(r: Omit<RogueServer, 'firstSeen' | 'lastSeen' | 'replies'>, now: number): void {
    const known = this.seen.get(r.serverId);
    if (known) {
      Object.assign(known, { source: r.source, lastReply: r.lastReply, lastSeen: now });
      known.replies++;
    } else {
      this.seen.set(r.serverId, { ...r, firstSeen: now, lastSeen: now, replies: 1 });
    }
  }

  list(): RogueServer[] {
    return [...this.seen.values()].map((r) => ({ ...r, lastReply: { ...r.lastReply } }));
  }

  active(now = Date.now()): RogueServer[] {
    return this.list().filter((r) => now - r.lastSeen <= this.staleMs);
  }

  /** For `sidereal status`: the servers active now, every one seen, when the last probe went out. */
  status(now = Date.now()): { lastCheck: number | null; active: RogueServer[]; seen: RogueServer[] } {
    return { lastCheck: this.lastCheck, active: this.active(now), seen: this.list() };
  }
}

/** The probe's client MAC: locally administered, fixed for a server address (one lease at most in a rogue's pool). */
export function rogueProbeMac(serverAddress: string): string {
  const h = createHash('sha256').update(`sidereal rogue DHCP check ${serverAddress}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export interface RogueCheckOptions {
  interface: string;
  /** Our own addresses: replies carrying one of them as server identifier are ours. */
  ours: string[];
  /** The probe's MAC (rogueProbeMac of the server address). */
  probeMac: string;
  intervalMs: number;
  record: RogueServers;
  logger: Logger;
  /** Called once per rogue reply (the metric). */
  onReply?: () => void;
}

export interface RogueCheck {
  close(): Promise<void>;
}

const CLIENT_PORT = 68;
const SERVER_PORT = 67;

export async function startRogueCheck(opts: RogueCheckOptions): Promise<RogueCheck> {
  const log = opts.logger.child({ svc: 'dhcp', check: 'rogue' });
  const ours = new Set(opts.ours);
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    let fd: number;
    try { fd = boundSocketFd(opts.interface, '0.0.0.0', CLIENT_PORT); } catch (err) { reject(err); return; }
    socket.bind({ fd }, () => { socket.off('error', reject); socket.setBroadcast(true); resolve(); });
  });
  socket.on('error', (err) => log.warn({ err }, 'rogue DHCP check socket error'));

  // Servers already reported in this probe cycle: one error line per server per cycle, not per packet.
  let reportedThisCycle = new Set<string>();
  socket.on('message', (msg, rinfo) => {
    let p: DhcpPacket;
    try { p = decodePacket(msg); } catch { return; }
    if (p.op !== 2) return; // a client's broadcast (our own probe among them)
    const serverId = getIp(p, OPT.serverId) ?? rinfo.address;
    if (ours.has(serverId) || ours.has(rinfo.address)) return;
    const now = Date.now();
    const type = messageTypeName(messageType(p));
    const bootFile = getString(p, OPT.bootFile) ?? (p.file || null);
    opts.record.note({ serverId, source: rinfo.address, lastReply: { type, yiaddr: p.yiaddr, bootFile } }, now);
    opts.onReply?.();
    if (!reportedThisCycle.has(serverId)) {
      reportedThisCycle.add(serverId);
      const probeAnswer = macOf(p) === opts.probeMac;
      log.error({ rogueServer: serverId, source: rinfo.address, interface: opts.interface, type, offered: p.yiaddr, bootFile, seenBy: probeAnswer ? 'probe' : 'listening' },
        'another DHCP server answers on the provisioning segment: nodes will boot from it at random');
    }
  });

  const probe = () => {
    opts.record.lastCheck = Date.now();
    reportedThisCycle = new Set();
    socket.send(discover(opts.probeMac, (Math.random() * 0xffffffff) >>> 0), SERVER_PORT, '255.255.255.255', (err) => {
      if (err) log.warn({ error: err.message, interface: opts.interface }, 'rogue DHCP check: probe not sent');
    });
  };
  probe();
  const timer = setInterval(probe, opts.intervalMs);
  timer.unref();
  log.info({ interface: opts.interface, intervalSeconds: opts.intervalMs / 1000, probeMac: opts.probeMac }, 'rogue DHCP check started');
  return {
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      socket.close(() => resolve());
    }),
  };
}

function discover(mac: string, xid: number): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  return encodePacket({
    op: 1, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '',
    options: [
      optU8(OPT.messageType, MessageType.DISCOVER),
      // A PXE client's request: a rogue that answers only PXE clients (a second provisioning server) answers this too.
      opt(OPT.vendorClass, Buffer.from('PXEClient:Arch:00000:UNDI:002001', 'latin1')),
      opt(OPT.paramList, Buffer.from([1, 3, 6, 54, 66, 67])),
    ],
  });
}
