/**
 * The writers of the crash test, run as their own processes inside the test's namespaces.
 * Each prints one line per write the daemon acknowledged, as soon as it is acknowledged, so
 * the parent knows exactly what was promised even when the daemon dies mid-flight:
 *   node writers.js api  URL TOKEN PREFIX COUNT CONCURRENCY   -> "machine <mac>" per 201
 *   node writers.js dhcp PREFIX COUNT CONCURRENCY             -> "lease <mac> <ip>" per ACK
 * The DHCP writer is a crowd of clients on the test's client namespace: it broadcasts there.
 * They stop by themselves: when done, or after 20 s.
 */
import { createSocket } from 'node:dgram';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/packet.js';
import { MessageType, getIp, messageType, OPT } from '../../server/dhcp/options.js';

const [mode, ...args] = process.argv.slice(2);
const deadline = setTimeout(() => process.exit(0), 20_000);
const mac = (prefix: number, i: number) => [2, prefix, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':');
const say = (line: string) => process.stdout.write(line + '\n');

async function api(url: string, token: string, prefix: number, count: number, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const m = mac(prefix, next++);
      try {
        const r = await fetch(`${url}/api/v1/machines`, {
          method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ mac: m, hostname: `crash-${m.replace(/:/g, '')}` }),
        });
        if (r.status === 201) say(`machine ${m}`);
      } catch {
        return; // the daemon is gone
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function request(m: string, type: number, xid: number, extra: DhcpPacket['options'] = []): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(m.replace(/:/g, ''), 'hex').copy(chaddr);
  return encodePacket({
    op: 1, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0',
    giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: [{ code: OPT.messageType, data: Buffer.from([type]) }, ...extra],
  });
}

async function dhcp(prefix: number, count: number, concurrency: number): Promise<void> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind(68, '0.0.0.0', () => r()));
  sock.setBroadcast(true);
  const pending = new Map<number, { m: string; done: () => void }>();
  sock.on('message', (msg) => {
    let p: DhcpPacket;
    try { p = decodePacket(msg); } catch { return; }
    const w = pending.get(p.xid);
    if (!w) return;
    const t = messageType(p);
    if (t === MessageType.OFFER) {
      sock.send(request(w.m, MessageType.REQUEST, p.xid, [
        { code: OPT.requestedIp, data: Buffer.from(p.yiaddr.split('.').map(Number)) },
        { code: OPT.serverId, data: Buffer.from(getIp(p, OPT.serverId)!.split('.').map(Number)) },
      ]), 67, '255.255.255.255');
    } else if (t === MessageType.ACK) {
      say(`lease ${w.m} ${p.yiaddr}`);
      pending.delete(p.xid);
      w.done();
    } else if (t === MessageType.NAK) {
      pending.delete(p.xid);
      w.done();
    }
  });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const m = mac(prefix, i);
      const xid = (prefix << 24) | i;
      // One exchange at a time per worker; an unanswered one (the daemon died) gives up after 1 s.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { pending.delete(xid); resolve(); }, 1000);
        pending.set(xid, { m, done: () => { clearTimeout(timer); resolve(); } });
        sock.send(request(m, MessageType.DISCOVER, xid), 67, '255.255.255.255');
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  sock.close();
}

if (mode === 'api') await api(args[0]!, args[1]!, Number(args[2]), Number(args[3]), Number(args[4]));
else if (mode === 'dhcp') await dhcp(Number(args[0]), Number(args[1]), Number(args[2]));
else throw new Error(`usage: writers.js api|dhcp ...`);
clearTimeout(deadline);
