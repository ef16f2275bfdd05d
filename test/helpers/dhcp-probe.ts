/**
 * A raw DHCP client for integration tests, run inside the client namespace:
 *   ip netns exec NS node dist/test/helpers/dhcp-probe.js '<json>'
 * mode "send": send the given packets (hex) and print every reply received
 * on port 68 within `listenMs`. mode "flood": send `count` malformed packets
 * (truncated, random, bad cookie, overrunning options, mutated captures).
 * Prints one JSON line with the result. Every loop is bounded.
 */
import dgram from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { decodePacket } from '../../server/dhcp/packet.js';
import { macOf, messageType } from '../../server/dhcp/options.js';
import { loadCaptures } from './dhcp-packets.js';

interface SendCmd { mode: 'send'; to: string; port?: number; packets: string[]; listenMs: number; bindPort?: number }
interface FloodCmd { mode: 'flood'; to: string; port?: number; count: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sendOne(sock: dgram.Socket, buf: Buffer, port: number, to: string): Promise<void> {
  return new Promise((resolve) => sock.send(buf, port, to, () => resolve()));
}

export function malformed(i: number, captured: Buffer[]): Buffer {
  const base = captured[i % captured.length]!;
  switch (i % 5) {
    case 0: return Buffer.from(base.subarray(0, randomInt(0, 240)));                 // truncated
    case 1: return randomBytes(randomInt(0, 600));                                    // random bytes
    case 2: { const b = Buffer.from(base); b.writeUInt32BE(randomInt(0, 0x7fffffff), 236); return b; } // bad cookie
    case 3: {                                                                         // option overrunning the buffer
      const b = Buffer.from(base.subarray(0, 243));
      b[240] = 53; b[241] = 1; b[242] = 1;
      return Buffer.concat([b, Buffer.from([60, 250]), randomBytes(randomInt(0, 40))]);
    }
    default: {                                                                        // mutated capture
      const b = Buffer.from(base);
      for (let k = 0; k < 1 + (i % 8); k++) b[randomInt(0, b.length)] = randomInt(0, 256);
      return b;
    }
  }
}

async function main(): Promise<void> {
  const cmd = JSON.parse(process.argv[2] ?? '{}') as SendCmd | FloodCmd;
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const replies: Array<{ type: number | undefined; yiaddr: string; xid: number; mac: string; from: string }> = [];
  const bindPort = cmd.mode === 'send' ? cmd.bindPort ?? 68 : 0;
  await new Promise<void>((resolve) => sock.bind({ port: bindPort, address: '0.0.0.0' }, () => resolve()));
  sock.setBroadcast(true);
  sock.on('message', (msg, rinfo) => {
    try {
      const p = decodePacket(msg);
      if (p.op === 2) replies.push({ type: messageType(p), yiaddr: p.yiaddr, xid: p.xid, mac: macOf(p), from: rinfo.address });
    } catch { /* not ours to judge */ }
  });
  const port = cmd.port ?? 67;
  if (cmd.mode === 'send') {
    for (const hex of cmd.packets) await sendOne(sock, Buffer.from(hex, 'hex'), port, cmd.to);
    await sleep(cmd.listenMs);
    process.stdout.write(`${JSON.stringify({ sent: cmd.packets.length, replies })}\n`);
  } else {
    const captured = loadCaptures().map((c) => c.bytes);
    const count = Math.min(cmd.count, 100_000);
    for (let i = 0; i < count; i++) {
      await sendOne(sock, malformed(i, captured), port, cmd.to);
      if (i % 25 === 24) await sleep(20);   // stay well under the server's socket buffer
    }
    process.stdout.write(`${JSON.stringify({ sent: count })}\n`);
  }
  sock.close();
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String(err) })}\n`);
  process.exit(1);
});
