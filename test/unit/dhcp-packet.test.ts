import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archFromOption93 } from '../../server/dhcp/arch.js';
import { decodePacket, DhcpDecodeError, encodePacket, type DhcpPacket } from '../../server/dhcp/packet.js';
import {
  clientArchCode, getOption, getString, isIpxe, macOf, messageType, paramList, subOptions, userClasses,
} from '../../server/dhcp/options.js';
import { loadCaptures, makeRequest } from '../helpers/dhcp-packets.js';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { MemoryBackend } from '../../server/dhcp/memory-backend.js';

const captures = loadCaptures();
const requests = captures.filter((c) => c.bytes[0] === 1).map((c) => ({ ...c, p: decodePacket(c.bytes) }));

describe('codec against the captured packets', () => {
  it('has the fixtures', () => {
    expect(captures.length).toBeGreaterThanOrEqual(70);
    expect(new Set(captures.map((c) => c.capture)).size).toBe(5);
  });

  it.each(captures.map((c) => [`${c.capture}#${c.frame}`, c] as const))('%s decodes and round-trips', (_n, c) => {
    const p = decodePacket(c.bytes);
    expect(macOf(p)).toBe('52:54:00:77:00:10');
    expect(messageType(p)).toBeGreaterThanOrEqual(1);
    const again = encodePacket(p);
    expect(decodePacket(again)).toEqual(p);
    // Our encoding of a captured message is byte-identical up to its End option.
    const end = c.bytes.indexOf(0xff, 240);
    if (end > 0 && c.bytes.subarray(240, end).indexOf(0) < 0) expect(again.subarray(0, end + 1)).toEqual(c.bytes.subarray(0, end + 1));
  });

  it('reads what firmware really sends: 93, 60, 77 raw iPXE, 175, 97, 55', () => {
    const seabiosIpxe = requests.find((r) => r.capture === 'bios-seabios-ipxe-to-initrd' && messageType(r.p) === 1)!.p;
    expect(clientArchCode(seabiosIpxe)).toBe(0);
    expect(getString(seabiosIpxe, 60)).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(getOption(seabiosIpxe, 77)).toEqual(Buffer.from('iPXE'));       // raw, not RFC 3004
    expect(userClasses(seabiosIpxe)).toEqual(['iPXE']);
    expect(isIpxe(seabiosIpxe)).toBe(true);
    expect(getOption(seabiosIpxe, 175)!.length).toBeGreaterThan(0);
    expect(subOptions(getOption(seabiosIpxe, 175)!).size).toBeGreaterThan(3);
    expect(paramList(seabiosIpxe)).toEqual(expect.arrayContaining([1, 3, 6, 66, 67, 175]));

    const ovmf = requests.find((r) => r.capture === 'uefi-ovmf-pxe-to-initrd' && messageType(r.p) === 1)!.p;
    expect(clientArchCode(ovmf)).toBe(7);
    expect(archFromOption93(clientArchCode(ovmf))).toEqual({ arch: 'efi64', unknown: false });
    expect(getString(ovmf, 60)).toMatch(/^PXEClient:Arch:00007:UNDI:003000/);
    expect(getOption(ovmf, 97)).toHaveLength(17);
    expect(paramList(ovmf)).toContain(97);
    expect(isIpxe(ovmf)).toBe(false);

    // The later exchanges (syslinux.efi, dracut) send none of 93/60/77.
    const dracut = requests.filter((r) => r.capture === 'bios-seabios-ipxe-to-nfsroot' && r.frame === 17)[0]!.p;
    expect(clientArchCode(dracut)).toBeUndefined();
    expect(getOption(dracut, 60)).toBeUndefined();
    expect(getOption(dracut, 77)).toBeUndefined();
  });

  it('accepts option 77 in RFC 3004 form too', () => {
    const p = makeRequest({ mac: '52:54:00:00:00:01', type: 1, userClass: Buffer.from('\x04iPXE\x03foo', 'latin1') });
    expect(userClasses(p)).toEqual(['iPXE', 'foo']);
    expect(isIpxe(p)).toBe(true);
  });
});

describe('codec errors name the field', () => {
  const good = encodePacket(makeRequest({ mac: '52:54:00:00:00:01', type: 1 }));
  const bad = (mut: (b: Buffer) => Buffer, field: RegExp) => {
    let err: unknown;
    try { decodePacket(mut(Buffer.from(good))); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DhcpDecodeError);
    expect((err as DhcpDecodeError).field).toMatch(field);
  };
  it('short packet', () => bad((b) => b.subarray(0, 100), /^packet$/));
  it('bad op', () => bad((b) => { b[0] = 7; return b; }, /^op$/));
  it('bad hlen', () => bad((b) => { b[2] = 17; return b; }, /^hlen$/));
  it('hlen not 6 for Ethernet', () => bad((b) => { b[2] = 5; return b; }, /^hlen$/));
  it('bad magic cookie', () => bad((b) => { b[236] = 0; return b; }, /magic cookie/));
  it('option overrunning the buffer', () => bad((b) => Buffer.concat([b.subarray(0, 240), Buffer.from([60, 200, 65, 65])]), /option 60/));
  it('length byte missing', () => bad((b) => Buffer.concat([b.subarray(0, 240), Buffer.from([60])]), /option 60/));
  it('fixed-size option of the wrong size', () => bad((b) => Buffer.concat([b.subarray(0, 240), Buffer.from([53, 2, 1, 1, 255])]), /option 53/));
  it('bad overload value', () => bad((b) => Buffer.concat([b.subarray(0, 240), Buffer.from([52, 1, 9, 255])]), /option 52/));
  it('encode refuses an over-long file field', () => {
    expect(() => encodePacket({ ...makeRequest({ mac: '52:54:00:00:00:01', type: 1 }), file: 'x'.repeat(128) })).toThrow(/file/);
  });
});

describe('codec details', () => {
  it('decodes option 52 overload of file and sname', () => {
    const b = Buffer.alloc(300);
    encodePacket(makeRequest({ mac: '52:54:00:00:00:02', type: 3 })).copy(b);
    Buffer.from([53, 1, 3, 52, 1, 3, 255]).copy(b, 240);
    Buffer.from([67, 4, 0x61, 0x62, 0x63, 0x64, 255]).copy(b, 108);   // file holds option 67
    Buffer.from([12, 2, 0x68, 0x69, 255]).copy(b, 44);                 // sname holds option 12
    const p = decodePacket(b);
    expect(p.file).toBe('');
    expect(p.sname).toBe('');
    expect(getString(p, 67)).toBe('abcd');
    expect(getString(p, 12)).toBe('hi');
    expect(p.options.map((o) => o.code)).toEqual([53, 67, 12]);
    expect(decodePacket(encodePacket(p))).toEqual(p);
  });

  it('pads to 300 bytes and splits long options (RFC 3396)', () => {
    const p: DhcpPacket = makeRequest({ mac: '52:54:00:00:00:03', type: 1, extra: [{ code: 250, data: Buffer.alloc(300, 7) }] });
    const b = encodePacket(p);
    expect(encodePacket(makeRequest({ mac: '52:54:00:00:00:03', type: 1 })).length).toBe(300);
    const back = decodePacket(b);
    expect(back.options.filter((o) => o.code === 250).map((o) => o.data.length)).toEqual([255, 45]);
    expect(getOption(back, 250)).toEqual(Buffer.alloc(300, 7));
  });

  it('keeps unknown options raw', () => {
    const p = makeRequest({ mac: '52:54:00:00:00:04', type: 1, extra: [{ code: 224, data: Buffer.from([1, 2, 3]) }] });
    expect(decodePacket(encodePacket(p)).options).toEqual(p.options);
  });
});

describe('option 93 table', () => {
  it.each([
    [0, 'bios', false], [6, 'efi32', false], [7, 'efi64', false], [9, 'efi64', false],
    [16, 'efi64-http', false], [11, 'arm64', false], [2, 'bios', true], [0xffff, 'bios', true],
  ] as const)('%i -> %s', (code, arch, unknown) => {
    expect(archFromOption93(code)).toEqual({ arch, unknown });
  });
  it('absent -> bios, not unknown', () => expect(archFromOption93(undefined)).toEqual({ arch: 'bios', unknown: false }));
});

describe('our replies dissect cleanly in tshark', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sid-dhcp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('OFFER/ACK/NAK for the captured requests have no malformed or error fields', async () => {
    const backend = new MemoryBackend({ server: '10.77.0.1', reservations: new Map([['52:54:00:77:00:10', { ipv4: '10.77.0.145', hostname: 'node-a' }]]) });
    const h = new DhcpHandler({
      serverId: '10.77.0.1', subnet: { network: '10.77.0.0', prefix: 24 }, router: '10.77.0.1', dns: ['10.77.0.1'],
      domain: 'lab', leaseTime: 3600, pool: { start: '10.77.0.100', end: '10.77.0.199' }, unknownClients: 'pool', backend,
    });
    const replies: Buffer[] = [];
    for (const r of requests) {
      const out = h.handle(r.p, { receivedOn: 'interface', now: 1_000_000 });
      if (out) replies.push(encodePacket(out.reply));
    }
    replies.push(encodePacket(h.handle(makeRequest({ mac: '52:54:00:77:00:10', type: 3, requestedIp: '10.9.9.9' }), { receivedOn: 'interface', now: 1 })!.reply));
    expect(replies.length).toBeGreaterThan(20);
    const dump = replies.map((b) => hexdump(b)).join('\n');
    writeFileSync(join(dir, 'replies.txt'), dump);
    await execa('text2pcap', ['-q', '-u', '67,68', '-4', '10.77.0.1,255.255.255.255', join(dir, 'replies.txt'), join(dir, 'replies.pcap')]);
    const bad = await execa('tshark', ['-r', join(dir, 'replies.pcap'), '-Y', '_ws.malformed || _ws.expert.severity >= error']);
    expect(bad.stdout.trim()).toBe('');
    const f = await execa('tshark', ['-r', join(dir, 'replies.pcap'), '-T', 'fields', '-e', 'dhcp.option.dhcp', '-e', 'dhcp.file', '-e', 'dhcp.ip.your']);
    const lines = f.stdout.trim().split('\n');
    expect(lines).toHaveLength(replies.length);
    expect(lines.filter((l) => l.startsWith('5\t')).length).toBeGreaterThan(5);
    expect(lines.some((l) => l.includes('http://10.77.0.1:8080/boot/52:54:00:77:00:10.ipxe'))).toBe(true);
    expect(lines.some((l) => l.startsWith('6\t'))).toBe(true);
  }, 30_000);
});

function hexdump(b: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    lines.push(`${i.toString(16).padStart(6, '0')} ${[...b.subarray(i, i + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`);
  }
  return lines.join('\n');
}
