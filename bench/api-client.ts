/**
 * The inside of `bench/api.ts`, run in the client namespace: registrations
 * per second through the admin API, and the time from an API write to the
 * next DHCP reply that reflects it (a real DISCOVER broadcast on the wire).
 *   ip netns exec NS node dist/bench/api-client.js '<json>'
 * Prints one JSON line. Every loop is bounded.
 */
import dgram from 'node:dgram';
import { decodePacket, encodePacket } from '../server/dhcp/packet.js';
import { macOf } from '../server/dhcp/options.js';
import { makeRequest } from '../test/helpers/dhcp-packets.js';
import { fromInt, toInt } from '../server/net/ipv4.js';

interface Cmd { api: string; token: string; machines: number; concurrency: number; latencySamples: number; firstIp: string; broadcast: string }

const cmd = JSON.parse(process.argv[2] ?? '{}') as Cmd;
const headers = { authorization: `Bearer ${cmd.token}`, 'content-type': 'application/json' };
const macOfIndex = (prefix: number, i: number) => `02:${prefix.toString(16).padStart(2, '0')}:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function register(mac: string, ipv4: string, hostname: string): Promise<number> {
  const r = await fetch(`${cmd.api}/api/v1/machines`, { method: 'POST', headers, body: JSON.stringify({ mac, ipv4, hostname }) });
  await r.arrayBuffer();
  return r.status;
}

async function registrations(): Promise<{ seconds: number; perSecond: number; failures: number }> {
  let next = 0;
  let failures = 0;
  const base = toInt(cmd.firstIp);
  const t0 = performance.now();
  const worker = async () => {
    while (next < cmd.machines) {
      const i = next++;
      if ((await register(macOfIndex(1, i), fromInt(base + i), `bench-${i}`)) !== 201) failures++;
    }
  };
  await Promise.all(Array.from({ length: cmd.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, perSecond: cmd.machines / seconds, failures };
}

async function writeToDhcp(): Promise<{ ms: number[]; missed: number }> {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind({ port: 68, address: '0.0.0.0' }, () => r()));
  sock.setBroadcast(true);
  const waiting = new Map<string, (yiaddr: string) => void>();
  sock.on('message', (msg) => {
    try {
      const p = decodePacket(msg);
      waiting.get(macOf(p))?.(p.yiaddr);
    } catch { /* not a reply */ }
  });
  const ms: number[] = [];
  let missed = 0;
  const base = toInt(cmd.firstIp) + cmd.machines;
  for (let i = 0; i < cmd.latencySamples; i++) {
    const mac = macOfIndex(2, i);
    const ip = fromInt(base + i);
    const t0 = performance.now();
    if ((await register(mac, ip, `lat-${i}`)) !== 201) { missed++; continue; }
    const got = new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 2000);
      waiting.set(mac, (y) => { clearTimeout(timer); resolve(y); });
    });
    // The subnet's directed broadcast: a plain UDP socket has no route to 255.255.255.255 here (no default route).
    sock.send(encodePacket(makeRequest({ mac, type: 1, xid: 0x5000 + i, flags: 0x8000 })), 67, cmd.broadcast);
    const yiaddr = await got;
    waiting.delete(mac);
    if (yiaddr === ip) ms.push(performance.now() - t0);
    else missed++;
  }
  sock.close();
  return { ms, missed };
}

const reg = await registrations();
const lat = await writeToDhcp();
process.stdout.write(JSON.stringify({ registrations: reg, latency: lat }) + '\n');
