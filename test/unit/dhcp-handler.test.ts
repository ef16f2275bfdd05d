import { beforeEach, describe, expect, it } from 'vitest';
import { DhcpHandler } from '../../server/dhcp/handler.js';
import { MemoryBackend } from '../../server/dhcp/memory-backend.js';
import type { DhcpHandlerOptions } from '../../server/dhcp/options-config.js';
import { getIp, getOption, getString, getU32, messageType, OPT } from '../../server/dhcp/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/packet.js';
import { ipBytes, loadCaptures, makeRequest } from '../helpers/dhcp-packets.js';

const US = '10.77.0.1';
const NODE = '52:54:00:77:00:10';        // reserved, as in the captures
const HOLDER = '52:54:00:aa:00:01';      // registered machine whose address is inside the pool
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';
const D = '52:54:00:00:00:0d';
const T0 = 1_700_000_000_000;

let backend: MemoryBackend;
let h: DhcpHandler;
function setup(over: Partial<DhcpHandlerOptions> = {}) {
  backend = new MemoryBackend({
    server: US,
    reservations: new Map([
      [NODE, { ipv4: '10.77.0.145', hostname: 'node-a' }],
      [HOLDER, { ipv4: '10.77.0.100', hostname: 'holder' }],
    ]),
  });
  h = new DhcpHandler({
    serverId: US, subnet: { network: '10.77.0.0', prefix: 24 }, router: US, dns: ['10.77.0.53'], domain: 'lab.example',
    leaseTime: 3600, pool: { start: '10.77.0.100', end: '10.77.0.103' }, unknownClients: 'pool', backend,
    relays: [{ subnet: { network: '10.88.0.0', prefix: 24 }, router: '10.88.0.1', pool: { start: '10.88.0.50', end: '10.88.0.60' } }],
    ...over,
  });
}
beforeEach(() => setup());

const ctx = (now = T0) => ({ receivedOn: 'interface' as const, now });
const discover = (mac: string, extra: Parameters<typeof makeRequest>[0] | object = {}, now = T0) =>
  h.handle(makeRequest({ mac, type: 1, ...extra }), ctx(now));
const request = (mac: string, extra: object, now = T0) => h.handle(makeRequest({ mac, type: 3, ...extra }), ctx(now));
const typeOf = (p: DhcpPacket) => messageType(p);

function bind(mac: string, now = T0): string {
  const offer = discover(mac, {}, now)!;
  const ack = request(mac, { serverId: US, requestedIp: offer.reply.yiaddr }, now)!;
  expect(typeOf(ack.reply)).toBe(5);
  return ack.reply.yiaddr;
}

describe('DISCOVER -> OFFER', () => {
  it('offers the reservation with the boot and network options', () => {
    const r = discover(NODE)!;
    expect(typeOf(r.reply)).toBe(2);
    expect(r.reply.yiaddr).toBe('10.77.0.145');
    expect(r.reply.siaddr).toBe(US);
    expect(r.reply.file).toBe('pxelinux.0');
    expect(r.to).toEqual({ address: '255.255.255.255', port: 68 });
    const p = r.reply;
    expect(getIp(p, OPT.serverId)).toBe(US);
    expect(getIp(p, OPT.subnetMask)).toBe('255.255.255.0');
    expect(getIp(p, OPT.router)).toBe(US);
    expect(getIp(p, OPT.dns)).toBe('10.77.0.53');
    expect(getIp(p, OPT.broadcast)).toBe('10.77.0.255');
    expect(getString(p, OPT.hostname)).toBe('node-a');
    expect(getString(p, OPT.domain)).toBe('lab.example');
    expect(getU32(p, OPT.leaseTime)).toBe(3600);
    expect(getU32(p, OPT.t1)).toBe(1800);
    expect(getU32(p, OPT.t2)).toBe(3150);
    expect(getString(p, OPT.tftpServer)).toBe(US);
    expect(getString(p, OPT.bootFile)).toBe('pxelinux.0');
    expect(getOption(p, OPT.vendorClass)).toBeUndefined();   // the client sent no option 60
    expect(r.log).toMatchObject({ mac: NODE, type: 'DISCOVER', arch: 'bios', ip: '10.77.0.145', file: 'pxelinux.0', outcome: 'offer' });
    expect(decodePacket(encodePacket(p))).toEqual(p);
  });

  it('offers the lowest free pool address, skipping reserved ones, and holds offers', () => {
    expect(discover(A)!.reply.yiaddr).toBe('10.77.0.101');          // .100 belongs to HOLDER
    expect(discover(B)!.reply.yiaddr).toBe('10.77.0.102');          // .101 is held for A
    expect(discover(A)!.reply.yiaddr).toBe('10.77.0.101');          // same MAC, same offer
    expect(backend.leases.byMac(A)).toBeUndefined();                // offers are not persisted
  });

  it('honours the requested address when free and in the pool', () => {
    expect(discover(A, { requestedIp: '10.77.0.103' })!.reply.yiaddr).toBe('10.77.0.103');
    expect(discover(B, { requestedIp: '10.77.0.100' })!.reply.yiaddr).toBe('10.77.0.101'); // reserved by HOLDER
    expect(discover(C, { requestedIp: '10.77.0.200' })!.reply.yiaddr).toBe('10.77.0.102'); // outside the pool
  });

  it('offers expire after ~60 s', () => {
    discover(A);
    expect(discover(B, {}, T0 + 61_000)!.reply.yiaddr).toBe('10.77.0.101');
  });

  it('pool exhaustion: no offer, a warn outcome, no throw', () => {
    bind(A); bind(B); bind(C);
    expect(discover(D)).toBeNull();
    const out = h.handleDetailed(makeRequest({ mac: D, type: 1 }), ctx());
    expect(out.level).toBe('warn');
    expect(out.log.reason).toBe('pool-exhausted');
    expect(discover(NODE)!.reply.yiaddr).toBe('10.77.0.145');      // reservations still served
  });

  it('unknown clients with policy ignore are dropped (debug), reserved ones served', () => {
    setup({ unknownClients: 'ignore' });
    expect(discover(A)).toBeNull();
    expect(h.handleDetailed(makeRequest({ mac: A, type: 1 }), ctx()).level).toBe('debug');
    expect(discover(NODE)!.reply.yiaddr).toBe('10.77.0.145');
  });
});

describe('PXE options', () => {
  it('efi64 firmware: option 93 = 7, 60 echoed as PXEClient, 97 echoed', () => {
    const r = discover(NODE, { archCode: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', uuid: true })!;
    expect(r.reply.file).toBe('efi64/syslinux.efi');
    expect(getString(r.reply, OPT.vendorClass)).toBe('PXEClient');
    // without 43 = discovery control 8, OVMF goes looking for a proxyDHCP server and never boots
    expect(getOption(r.reply, OPT.vendorSpecific)).toEqual(Buffer.from([6, 1, 8, 255]));
    expect(getOption(r.reply, OPT.clientUuid)).toEqual(Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]));
    expect(r.log.arch).toBe('efi64');
  });

  it('UEFI HTTP boot: HTTPClient back and an http:// boot file', () => {
    const r = discover(NODE, { archCode: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003001' })!;
    expect(getString(r.reply, OPT.vendorClass)).toBe('HTTPClient');
    expect(getOption(r.reply, OPT.vendorSpecific)).toBeUndefined();
    expect(getString(r.reply, OPT.bootFile)).toBe(`http://${US}/boot/efi64/syslinux.efi`);
  });

  it('iPXE (raw option 77): script URL and 175.176 no-pxedhcp = 1', () => {
    const r = discover(NODE, { archCode: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: Buffer.from('iPXE') })!;
    expect(getString(r.reply, OPT.bootFile)).toBe(`http://${US}:8080/boot/${NODE}.ipxe`);
    expect(getOption(r.reply, OPT.etherboot)).toEqual(Buffer.from([176, 1, 1]));
  });

  it('unknown arch falls back to bios and is flagged', () => {
    const r = discover(NODE, { archCode: 42 })!;
    expect(r.reply.file).toBe('pxelinux.0');
    expect(r.log.archUnknown).toBe(true);
  });

  it('follows option 55 order and always includes the PXE options', () => {
    const r = discover(NODE, { paramList: [15, 6, 1], vendorClass: 'PXEClient' })!;
    const codes = r.reply.options.map((o) => o.code);
    expect(codes.slice(0, 5)).toEqual([53, 54, 51, 58, 59]);
    expect(codes.slice(5, 8)).toEqual([15, 6, 1]);
    expect(codes).toEqual(expect.arrayContaining([60, 66, 67]));
  });

  it('trims optional options to fit option 57, never the PXE ones', () => {
    const long = 'h'.repeat(200);
    setup({ domain: 'd'.repeat(250) });
    backend.reservations.set(NODE, { ipv4: '10.77.0.145', hostname: long });
    const r = discover(NODE, { vendorClass: 'PXEClient', extra: [{ code: 57, data: Buffer.from([0x02, 0x40]) }] })!;
    expect(encodePacket(r.reply).length).toBeLessThanOrEqual(576 - 28);
    expect(getString(r.reply, OPT.bootFile)).toBe('pxelinux.0');
    expect(getString(r.reply, OPT.vendorClass)).toBe('PXEClient');
  });
});

describe('REQUEST', () => {
  it('SELECTING with our server id -> ACK, lease persisted', () => {
    const offer = discover(A)!;
    const ack = request(A, { serverId: US, requestedIp: offer.reply.yiaddr })!;
    expect(typeOf(ack.reply)).toBe(5);
    expect(ack.reply.yiaddr).toBe('10.77.0.101');
    expect(backend.leases.byMac(A)).toMatchObject({ ipv4: '10.77.0.101', state: 'bound', expiresAt: T0 + 3_600_000 });
    expect(ack.log.outcome).toBe('ack-selecting');
  });

  it('SELECTING another server -> silently dropped, our offer released', () => {
    discover(A);
    expect(request(A, { serverId: '10.77.0.2', requestedIp: '10.77.0.101' })).toBeNull();
    expect(backend.leases.byMac(A)).toBeUndefined();
    expect(discover(B)!.reply.yiaddr).toBe('10.77.0.101');
  });

  it('SELECTING an address that is not the client\'s -> NAK', () => {
    bind(A);
    const r = request(B, { serverId: US, requestedIp: '10.77.0.101' })!;
    expect(typeOf(r.reply)).toBe(6);
    expect(r.to).toEqual({ address: '255.255.255.255', port: 68 });
    expect(r.reply.yiaddr).toBe('0.0.0.0');
  });

  it('INIT-REBOOT: right address -> ACK; wrong address -> NAK; wrong subnet -> NAK', () => {
    bind(A);
    expect(typeOf(request(A, { requestedIp: '10.77.0.101' })!.reply)).toBe(5);
    const wrong = request(A, { requestedIp: '10.77.0.103' })!;
    expect(typeOf(wrong.reply)).toBe(6);
    expect(wrong.to.address).toBe('255.255.255.255');
    expect(typeOf(request(A, { requestedIp: '192.168.1.9' })!.reply)).toBe(6);
    expect(typeOf(request(NODE, { requestedIp: '10.77.0.145' })!.reply)).toBe(5);
    expect(typeOf(request(NODE, { requestedIp: '10.77.0.146' })!.reply)).toBe(6);  // reservation is a record
  });

  it('INIT-REBOOT with no record of the client and an address not ours to give -> silent (4.3.2)', () => {
    bind(A);
    expect(request(B, { requestedIp: '10.77.0.101' })).toBeNull();
  });

  it('RENEWING: own lease -> ACK unicast to ciaddr; someone else\'s -> NAK', () => {
    const ip = bind(A);
    const renew = request(A, { ciaddr: ip }, T0 + 1_800_000)!;
    expect(typeOf(renew.reply)).toBe(5);
    expect(renew.reply.ciaddr).toBe(ip);
    expect(renew.to).toEqual({ address: ip, port: 68 });
    expect(backend.leases.byMac(A)!.expiresAt).toBe(T0 + 1_800_000 + 3_600_000);
    expect(typeOf(request(B, { ciaddr: ip })!.reply)).toBe(6);
  });

  it('broadcast flag -> 255.255.255.255:68', () => {
    expect(discover(A, { flags: 0x8000 })!.to).toEqual({ address: '255.255.255.255', port: 68 });
  });
});

describe('DECLINE, RELEASE, INFORM', () => {
  it('DECLINE keeps the address out of the pool for a while', () => {
    const ip = bind(A);
    expect(h.handle(makeRequest({ mac: A, type: 4, requestedIp: ip, serverId: US }), ctx())).toBeNull();
    expect(discover(A)!.reply.yiaddr).not.toBe(ip);
    expect(discover(B)!.reply.yiaddr).not.toBe(ip);
    expect(discover(C, {}, T0 + 601_000)!.reply.yiaddr).toBe(ip);
  });

  it('RELEASE frees the lease', () => {
    const ip = bind(A);
    const out = h.handleDetailed(makeRequest({ mac: A, type: 7, ciaddr: ip, serverId: US }), ctx());
    expect(out.result).toBeNull();
    expect(out.log.outcome).toBe('released');
    expect(backend.leases.byMac(A)!.state).toBe('released');
    expect(discover(B)!.reply.yiaddr).toBe(ip);
  });

  it('INFORM -> ACK with options, no yiaddr, no lease time, unicast to ciaddr', () => {
    const r = h.handle(makeRequest({ mac: A, type: 8, ciaddr: '10.77.0.20' }), ctx())!;
    expect(typeOf(r.reply)).toBe(5);
    expect(r.reply.yiaddr).toBe('0.0.0.0');
    expect(r.reply.ciaddr).toBe('10.77.0.20');
    expect(getOption(r.reply, OPT.leaseTime)).toBeUndefined();
    expect(getOption(r.reply, OPT.t1)).toBeUndefined();
    expect(getIp(r.reply, OPT.subnetMask)).toBe('255.255.255.0');
    expect(r.to).toEqual({ address: '10.77.0.20', port: 68 });
  });
});

describe('relayed requests', () => {
  const relay = { receivedOn: 'relay' as const, now: T0 };
  it('served from the subnet containing giaddr, replied to giaddr:67', () => {
    const r = h.handle(makeRequest({ mac: A, type: 1, giaddr: '10.88.0.1', extra: [{ code: 82, data: Buffer.from([1, 2, 0x61, 0x62]) }] }), relay)!;
    expect(r.reply.yiaddr).toBe('10.88.0.50');
    expect(r.reply.giaddr).toBe('10.88.0.1');
    expect(r.to).toEqual({ address: '10.88.0.1', port: 67 });
    expect(getIp(r.reply, OPT.router)).toBe('10.88.0.1');
    expect(getIp(r.reply, OPT.broadcast)).toBe('10.88.0.255');
    expect(r.reply.options.at(-1)).toEqual({ code: 82, data: Buffer.from([1, 2, 0x61, 0x62]) });   // RFC 3046 echo
    const ack = h.handle(makeRequest({ mac: A, type: 3, giaddr: '10.88.0.1', serverId: US, requestedIp: '10.88.0.50' }), relay)!;
    expect(typeOf(ack.reply)).toBe(5);
    expect(ack.to).toEqual({ address: '10.88.0.1', port: 67 });
  });

  it('a NAK through a relay goes to giaddr with the broadcast bit', () => {
    const r = h.handle(makeRequest({ mac: A, type: 3, giaddr: '10.88.0.1', requestedIp: '10.77.0.101' }), relay)!;
    expect(typeOf(r.reply)).toBe(6);
    expect(r.to).toEqual({ address: '10.88.0.1', port: 67 });
    expect(r.reply.flags & 0x8000).toBe(0x8000);
  });

  it('option 82 is echoed only as a relay writes it: relayed and made of whole sub-options (found by the fuzzer)', () => {
    const opt82 = (data: number[]) => ({ code: 82, data: Buffer.from(data) });
    const has82 = (p: DhcpPacket) => p.options.some((o) => o.code === 82);
    // From a client on the segment (giaddr 0): not a relay's, not echoed.
    expect(has82(discover(B, { extra: [opt82([1, 2, 0x61, 0x62])] })!.reply)).toBe(false);
    // Relayed, but a sub-option overruns the option (tshark: "no room left in option"): not echoed, still answered.
    const bad = h.handle(makeRequest({ mac: C, type: 1, giaddr: '10.88.0.1', extra: [opt82([1, 9, 0x61])] }), relay)!;
    expect(typeOf(bad.reply)).toBe(2);
    expect(has82(bad.reply)).toBe(false);
    // Whole, but an empty remote ID (RFC 3046 2.2: at least 1 byte) or a 3-byte link selection (RFC 3527: 4): not echoed.
    for (const data of [[2, 0], [1, 1, 0x61, 5, 3, 10, 88, 0]]) {
      const r = h.handle(makeRequest({ mac: C, type: 1, giaddr: '10.88.0.1', extra: [opt82(data)] }), relay)!;
      expect(has82(r.reply)).toBe(false);
    }
    // Two whole sub-options (circuit id, remote id): echoed verbatim, in a NAK too.
    const good = [1, 2, 0x61, 0x62, 2, 1, 0x63];
    const nak = h.handle(makeRequest({ mac: D, type: 3, giaddr: '10.88.0.1', requestedIp: '10.77.0.101', extra: [opt82(good)] }), relay)!;
    expect(typeOf(nak.reply)).toBe(6);
    expect(nak.reply.options.at(-1)).toEqual(opt82(good));
  });

  it('no subnet for giaddr -> dropped and logged', () => {
    const out = h.handleDetailed(makeRequest({ mac: A, type: 1, giaddr: '172.16.0.1' }), relay);
    expect(out.result).toBeNull();
    expect(out.level).toBe('warn');
  });

  it('a reservation outside the relay subnet is not offered there', () => {
    expect(h.handle(makeRequest({ mac: NODE, type: 1, giaddr: '10.88.0.1' }), relay)).toBeNull();
  });
});

describe('odd input', () => {
  it('BOOTREPLY and plain BOOTP are ignored', () => {
    expect(h.handle({ ...makeRequest({ mac: A, type: 2 }), op: 2 }, ctx())).toBeNull();
    expect(h.handle({ ...makeRequest({ mac: A, type: 1 }), options: [] }, ctx())).toBeNull();
  });
  it('clientSeen receives every request', () => {
    discover(NODE, { archCode: 7, vendorClass: 'PXEClient:Arch:00007' });
    expect(backend.seen.at(-1)).toMatchObject({ mac: NODE, type: 'DISCOVER', archCode: 7, ip: '10.77.0.145', bootFile: 'efi64/syslinux.efi' });
  });
});

describe('a captured boot: firmware, bootloader, initramfs', () => {
  it('gives the same pool address to every exchange of the MAC', () => {
    setup({ pool: { start: '10.77.0.140', end: '10.77.0.199' } });
    backend.reservations.delete(NODE);   // an unknown machine, served from the pool
    const caps = loadCaptures().filter((c) => c.capture === 'uefi-ovmf-pxe-to-nfsroot' && c.bytes[0] === 1);
    let now = T0;
    let lastXid = -1;
    let offered = '';
    let other = 0;
    const given: Array<{ xid: number; type: number; ip: string; file: string; hasArch: boolean }> = [];
    for (const c of caps) {
      const req = decodePacket(c.bytes);
      if (req.xid !== lastXid) {
        // Between exchanges another client binds the lowest free address.
        bind(`52:54:00:00:01:${(other++).toString(16).padStart(2, '0')}`, now);
        lastXid = req.xid;
      }
      // Act as the client: request what we were offered (the capture holds dnsmasq's address).
      if (messageType(req) === 3 && getOption(req, 50)) {
        req.options = req.options.map((o) => (o.code === 50 ? { code: 50, data: ipBytes(offered) } : o));
      }
      now += 1000;
      const r = h.handle(req, ctx(now))!;
      expect(r).not.toBeNull();
      if (messageType(r.reply) === 2) offered = r.reply.yiaddr;
      given.push({ xid: req.xid, type: messageType(r.reply)!, ip: r.reply.yiaddr, file: r.reply.file, hasArch: !!getOption(req, 93) });
    }
    expect(new Set(given.map((g) => g.xid)).size).toBe(3);
    expect(given.filter((g) => g.type === 5)).toHaveLength(3);
    expect(new Set(given.map((g) => g.ip))).toEqual(new Set([given[0]!.ip]));
    expect(given[0]!.file).toBe('efi64/syslinux.efi');        // firmware, option 93 = 7
    expect(given.at(-1)!.hasArch).toBe(false);                 // dracut sends no 93
  });
});
