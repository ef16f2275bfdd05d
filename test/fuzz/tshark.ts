/**
 * A second decoder for what the fuzzed servers sent: the replies are written
 * to a pcap as UDP datagrams (raw IPv4 link type, real IP and UDP headers)
 * as they come, and read back by tshark, whose DHCP and TFTP dissectors are independent of
 * our codecs. Any frame tshark calls malformed or flags with an error is
 * returned with tshark's words.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Datagram {
  payload: Buffer;
  srcPort: number;
  dstPort: number;
  src?: string;
  dst?: string;
}

const LINKTYPE_RAW = 101;

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ip(s: string): Buffer {
  return Buffer.from(s.split('.').map(Number));
}

/**
 * Replies appended to a pcap file as they are sent (nothing kept in memory,
 * so the fuzzers' heap stays flat over a million packets).
 */
export class PcapWriter {
  readonly file: string;
  private readonly fd: number;
  private readonly dir: string;
  count = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'sidereal-fuzz-pcap-'));
    this.file = join(this.dir, 'replies.pcap');
    this.fd = openSync(this.file, 'w');
    const g = Buffer.alloc(24);
    g.writeUInt32LE(0xa1b2c3d4, 0);
    g.writeUInt16LE(2, 4);
    g.writeUInt16LE(4, 6);
    g.writeUInt32LE(262144, 16);
    g.writeUInt32LE(LINKTYPE_RAW, 20);
    writeSync(this.fd, g);
  }

  add(d: Datagram): void {
    const i = this.count++;
    const len = 28 + d.payload.length;
    const h = Buffer.alloc(16 + 28);
    h.writeUInt32LE(1_700_000_000 + Math.floor(i / 1000), 0);
    h.writeUInt32LE((i % 1000) * 1000, 4);
    h.writeUInt32LE(len, 8);
    h.writeUInt32LE(len, 12);
    const iph = h.subarray(16, 36);
    iph[0] = 0x45;
    iph.writeUInt16BE(len, 2);
    iph[8] = 64;
    iph[9] = 17; // UDP
    ip(d.src ?? '10.77.0.1').copy(iph, 12);
    ip(d.dst ?? '10.77.0.2').copy(iph, 16);
    iph.writeUInt16BE(ipChecksum(iph), 10);
    const udp = h.subarray(36, 44);
    udp.writeUInt16BE(d.srcPort, 0);
    udp.writeUInt16BE(d.dstPort, 2);
    udp.writeUInt16BE(8 + d.payload.length, 4); // checksum 0: none (RFC 768)
    writeSync(this.fd, h);
    writeSync(this.fd, d.payload);
  }

  /**
   * Close the file, let tshark read it, remove it: the frames tshark finds
   * malformed or in error. `decodeAs` forces a dissector on a port
   * (`udp.port==69,tftp`). Throws when tshark itself fails.
   */
  findings(decodeAs: string[] = []): { frames: number; findings: TsharkFinding[] } {
    closeSync(this.fd);
    try {
      if (this.count === 0) return { frames: 0, findings: [] };
      const args = ['-n', '-r', this.file, ...decodeAs.flatMap((d) => ['-d', d]),
        '-Y', '_ws.malformed || _ws.expert.severity >= 8388608',
        '-T', 'fields', '-E', 'separator=|', '-e', 'frame.number', '-e', 'frame.protocols', '-e', '_ws.expert.message'];
      const out = execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
      const findings = out.split('\n').filter(Boolean).map((line) => {
        const [frame, protocols, message] = line.split('|');
        return { frame: Number(frame), protocols: protocols ?? '', message: message ?? '' };
      });
      return { frames: this.count, findings };
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export interface TsharkFinding { frame: number; protocols: string; message: string }
