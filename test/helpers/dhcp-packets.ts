/**
 * Test helpers: load the captured DHCP (or TFTP) payloads
 * (test/fixtures/<proto>/*.hex, made by test/fixtures/extract.sh from
 * shared/captures) and build client requests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DhcpOption, DhcpPacket } from '../../server/dhcp/packet.js';

export interface CapturedPacket { capture: string; frame: number; bytes: Buffer }

/** The fixtures folder, from test/helpers or dist/test/helpers. */
export function fixturesDir(proto: 'dhcp' | 'tftp' = 'dhcp'): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of [`../fixtures/${proto}`, `../../../test/fixtures/${proto}`]) {
    const dir = join(here, rel);
    try { readdirSync(dir); return dir; } catch { /* try the next */ }
  }
  throw new Error(`test/fixtures/${proto} not found from ${here}`);
}

export function loadCaptures(proto: 'dhcp' | 'tftp' = 'dhcp'): CapturedPacket[] {
  const dir = fixturesDir(proto);
  const out: CapturedPacket[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.hex')).sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const [frame, hex] = line.trim().split(/\s+/);
      if (!frame || !hex) continue;
      out.push({ capture: f.replace(/\.hex$/, ''), frame: Number(frame), bytes: Buffer.from(hex, 'hex') });
    }
  }
  return out;
}

export function macBytes(mac: string): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(mac.split(':').map((x) => parseInt(x, 16))).copy(b);
  return b;
}

export function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

export interface RequestSpec {
  mac: string;
  type: number;
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  flags?: number;
  requestedIp?: string;
  serverId?: string;
  archCode?: number;
  vendorClass?: string;
  userClass?: Buffer;
  paramList?: number[];
  uuid?: boolean;
  extra?: DhcpOption[];
}

export function makeRequest(s: RequestSpec): DhcpPacket {
  const options: DhcpOption[] = [{ code: 53, data: Buffer.from([s.type]) }];
  if (s.requestedIp) options.push({ code: 50, data: ipBytes(s.requestedIp) });
  if (s.serverId) options.push({ code: 54, data: ipBytes(s.serverId) });
  if (s.archCode !== undefined) { const b = Buffer.alloc(2); b.writeUInt16BE(s.archCode); options.push({ code: 93, data: b }); }
  if (s.vendorClass) options.push({ code: 60, data: Buffer.from(s.vendorClass) });
  if (s.userClass) options.push({ code: 77, data: s.userClass });
  if (s.paramList) options.push({ code: 55, data: Buffer.from(s.paramList) });
  if (s.uuid) options.push({ code: 97, data: Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]) });
  options.push(...(s.extra ?? []));
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: s.xid ?? 0x1234abcd, secs: 0, flags: s.flags ?? 0,
    ciaddr: s.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: s.giaddr ?? '0.0.0.0',
    chaddr: macBytes(s.mac), sname: '', file: '', options,
  };
}
