import { describe, it, expect, afterEach } from 'vitest';
import { makeFixture, addLabRoot, type Fixture } from '../helpers/fixture.js';
import { planFor, bootAnswerFor } from '../../server/boot/decide.js';
import { serveBootPath, ipxeScriptFor } from '../../server/boot/files.js';
import { explain } from '../../server/boot/explain.js';

let f: Fixture;
afterEach(() => f?.cleanup());
const MAC = '52:54:00:77:00:10';
const text = (s: ReturnType<typeof serveBootPath>) => (s.kind === 'virtual' ? s.content.toString() : `<${s.kind}: ${s.kind === 'missing' ? s.reason : ''}>`);

describe('boot decision', () => {
  it('resolves machine > group > default and says which level won', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.groups.put({ name: 'compute', root: 'lab', bootMode: 'maintenance', loader: 'lpxelinux' });
    f.inv.machines.add(MAC, { group: 'compute', bootMode: 'local' });
    const p = planFor(f.inv, f.config, MAC);
    expect(p.root).toEqual({ value: 'lab', from: 'group' });
    expect(p.bootMode).toEqual({ value: 'local', from: 'machine' });
    expect(p.loader).toEqual({ value: 'lpxelinux', from: 'group' });
    const unknown = planFor(f.inv, f.config, 'aa:bb:cc:dd:ee:ff');
    expect(unknown.known).toBe(false);
    expect(unknown.bootMode).toEqual({ value: 'root', from: 'default' });
  });

  it.each([
    [0, 'pxelinux.0'], [6, 'efi32/syslinux.efi'], [7, 'efi64/syslinux.efi'], [9, 'efi64/syslinux.efi'],
    [11, 'arm64/grubnetaa64.efi'], [undefined, 'pxelinux.0'], [4242, 'pxelinux.0'],
  ])('option 93 = %s boots %s', (code, file) => {
    f = makeFixture();
    const a = bootAnswerFor(f.inv, f.config, { mac: MAC, archCode: code, isIpxe: false });
    expect(a.bootFile).toBe(file);
    expect(a.nextServer).toBe('10.77.0.1');
    expect(a.archUnknown).toBe(code === 4242);
  });

  it('gives iPXE its script URL (no loop) and UEFI HTTP boot a URL with HTTPClient', () => {
    f = makeFixture();
    expect(bootAnswerFor(f.inv, f.config, { mac: MAC, archCode: 0, isIpxe: true }).bootFile).toBe(`http://10.77.0.1:8080/boot/${MAC}.ipxe`);
    const http = bootAnswerFor(f.inv, f.config, { mac: MAC, archCode: 16, isIpxe: false });
    expect(http).toMatchObject({ vendorClass: 'HTTPClient', bootFile: 'http://10.77.0.1:8080/files/ipxe.efi' });
  });

  it('lets a group override the option-93 table and choose the loader', () => {
    f = makeFixture();
    f.inv.groups.put({ name: 'arm', bootFiles: { efi64: 'efi64/custom.efi' } });
    f.inv.groups.put({ name: 'fast', loader: 'ipxe' });
    f.inv.machines.add(MAC, { group: 'arm' });
    f.inv.machines.add('52:54:00:77:00:11', { group: 'fast' });
    expect(bootAnswerFor(f.inv, f.config, { mac: MAC, archCode: 7, isIpxe: false }).bootFile).toBe('efi64/custom.efi');
    expect(bootAnswerFor(f.inv, f.config, { mac: '52:54:00:77:00:11', archCode: 0, isIpxe: false }).bootFile).toBe('undionly.kpxe');
    expect(bootAnswerFor(f.inv, f.config, { mac: '52:54:00:77:00:11', archCode: 7, isIpxe: false }).bootFile).toBe('snponly.efi');
  });
});

describe('pxelinux lookup chain and menus', () => {
  it('answers the chain as pxelinux walks it', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { hostname: 'node01', root: 'lab' });
    expect(serveBootPath(f.inv, f.config, 'pxelinux.cfg/564d0f6e-1b8c-4e0e-9d1b-1f2e3d4c5b6a').kind).toBe('missing');
    const menu = text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10'));
    expect(menu).toMatch(/^DEFAULT root$/m);
    expect(menu).toMatch(/^ {2}KERNEL vmlinuz-6\.1\.0@lab$/m);
    expect(menu).toContain('APPEND initrd=initrd.img-6.1.0@lab ip=dhcp root=nfs:10.77.0.1:/srv/sidereal/roots/lab:vers=3,');
    expect(menu).toMatch(/ ro sidereal\.overlay=tmpfs sidereal\.hostname=node01 sidereal\.url=http:\/\/10\.77\.0\.1:8080 console=ttyS0$/m);
    expect(serveBootPath(f.inv, f.config, 'pxelinux.cfg/0A4D000A').kind).toBe('missing');
    expect(serveBootPath(f.inv, f.config, 'pxelinux.cfg/0A4D').kind).toBe('missing');
    // unknown MAC: not found, so pxelinux goes on to `default`
    expect(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff').kind).toBe('missing');
    expect(text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/default'))).toMatch(/unknown clients/);
  });

  it('serves the same under efi64/ and falls back to the top for kernels', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { hostname: 'node01', root: 'lab' });
    expect(text(serveBootPath(f.inv, f.config, 'efi64/pxelinux.cfg/01-52-54-00-77-00-10'))).toMatch(/sidereal\.hostname=node01/);
    const k = serveBootPath(f.inv, f.config, 'efi64/vmlinuz-6.1.0@lab');
    expect(k.kind === 'static' && k.path.endsWith('/tftp/vmlinuz-6.1.0@lab')).toBe(true);
    expect(serveBootPath(f.inv, f.config, 'efi64/../../etc/passwd').kind).toBe('missing');
    expect(serveBootPath(f.inv, f.config, '/etc/passwd').kind).toBe('missing');
  });

  it('renders maintenance read-write with no overlay, local as a disk boot, and a missing root as a reason', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { root: 'lab', bootMode: 'maintenance', ipv4: '10.77.0.10', kernelArgs: 'quiet' });
    f.inv.machines.add('52:54:00:77:00:11', { root: 'lab', bootMode: 'local' });
    f.inv.machines.add('52:54:00:77:00:12', {});
    const m = text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10'));
    expect(m).toMatch(/ rw sidereal\.overlay=none sidereal\.url=http:\/\/10\.77\.0\.1:8080 console=ttyS0 quiet$/m);
    expect(m).toMatch(/^DEFAULT maintenance$/m);
    expect(text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-11'))).toMatch(/^DEFAULT local$/m);
    const none = text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-12'));
    expect(none).toMatch(/^DEFAULT local$/m);
    expect(none).toMatch(/no root is assigned/);
  });

  it('writes the iPXE script: chain pxelinux on BIOS, direct HTTP kernel otherwise; exit for local', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { hostname: 'node01', root: 'lab' });
    const s = text(ipxeScriptFor(f.inv, f.config, MAC));
    expect(s.startsWith('#!ipxe\n')).toBe(true);
    expect(s).toContain('chain tftp://10.77.0.1/pxelinux.0');
    expect(s).toContain('kernel http://10.77.0.1:8080/files/vmlinuz-6.1.0@lab initrd=initrd.img-6.1.0@lab');
    expect(s).toContain('initrd http://10.77.0.1:8080/files/initrd.img-6.1.0@lab');
    f.inv.machines.update(MAC, { bootMode: 'local' });
    expect(text(ipxeScriptFor(f.inv, f.config, MAC))).toMatch(/^exit$/m);
  });

  it('sees an inventory change at the very next request (no cache to flush)', () => {
    f = makeFixture();
    addLabRoot(f);
    expect(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10').kind).toBe('missing');
    f.inv.machines.add(MAC, { hostname: 'node01', root: 'lab' });
    expect(text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10'))).toMatch(/hostname=node01/);
    f.inv.machines.update(MAC, { hostname: 'node02' });
    expect(text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10'))).toMatch(/hostname=node02/);
  });
});

describe('explain', () => {
  it('runs the DHCP handler and the menu renderer, and writes nothing', () => {
    f = makeFixture();
    addLabRoot(f);
    f.inv.machines.add(MAC, { hostname: 'node01', ipv4: '10.77.0.10', root: 'lab' });
    const bios = explain(f.inv, f.config, MAC, 'bios');
    expect(bios.dhcp).toMatchObject({ outcome: 'offer', yiaddr: '10.77.0.10', siaddr: '10.77.0.1', file: 'pxelinux.0' });
    expect(bios.dhcp.options['12']).toBe('node01');
    expect(bios.next?.path).toBe('pxelinux.cfg/01-52-54-00-77-00-10');
    expect(bios.next?.content).toBe(text(serveBootPath(f.inv, f.config, 'pxelinux.cfg/01-52-54-00-77-00-10')));
    const efi = explain(f.inv, f.config, MAC, 'efi64');
    expect(efi.dhcp.file).toBe('efi64/syslinux.efi');
    expect(efi.next?.path).toBe('efi64/pxelinux.cfg/01-52-54-00-77-00-10');
    const ipxe = explain(f.inv, f.config, MAC, 'ipxe');
    expect(ipxe.dhcp.file).toBe(`http://10.77.0.1:8080/boot/${MAC}.ipxe`);
    expect(ipxe.next?.content).toMatch(/^#!ipxe/);
    expect(explain(f.inv, f.config, MAC, 'http').dhcp.options['60']).toBe('HTTPClient');
    expect(f.inv.leases.list()).toEqual([]);
    expect(f.inv.events.list(MAC)).toEqual([]);
  });
});
