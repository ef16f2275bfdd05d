import { describe, it, expect } from 'vitest';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, loadConfig, ConfigError } from '../../server/config/config.js';
import { baseConfigDoc } from '../helpers/fixture.js';

function errorOf(edit: (d: any) => void): ConfigError {
  const doc: any = baseConfigDoc('/tmp/x');
  edit(doc);
  try {
    validateConfig(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('config', () => {
  it('accepts the documented example and fills defaults', () => {
    const c = validateConfig(baseConfigDoc('/tmp/x'));
    expect(c.dhcp.subnet.text).toBe('10.77.0.0/24');
    expect(c.dhcp.subnet.mask).toBe('255.255.255.0');
    expect(c.tftp.port).toBe(69);
    expect(c.tftp.maxBlksize).toBeUndefined(); // derived from the interface MTU by the TFTP server
    expect(c.http.publicUrl).toBe('http://10.77.0.1:8080');
    expect(c.http.threads).toBe(2);
    expect(c.tftp.threads).toBe(1);
    expect(c.nfs.server).toBe('10.77.0.1');
    expect(c.boot.files.efi64).toBe('efi64/syslinux.efi');
    expect(c.boot.defaults.bootMode).toBe('root');
    expect(c.dhcp.rogueCheckInterval).toBe(300);
    expect(c.dhcp.ackAfterFsync).toBe(true);
  });

  it('takes http.threads, and still accepts http.fileCacheMiB (ignored since bodies go out by sendfile)', () => {
    const doc: any = baseConfigDoc('/tmp/x');
    doc.http = { ...doc.http, threads: 4, fileCacheMiB: 512 };
    const c = validateConfig(doc);
    expect(c.http.threads).toBe(4);
    expect(c.http).not.toHaveProperty('fileCacheMiB');
  });

  it.each([
    ['serverAddress', (d: any) => { d.serverAddress = '10.77.0.300'; }, /not an IPv4 address/],
    ['serverAddress', (d: any) => { delete d.serverAddress; }, /is required/],
    ['dhcp.subnet', (d: any) => { d.dhcp.subnet = '10.77.0.0'; }, /not an IPv4 network/],
    ['dhcp.subnet', (d: any) => { d.dhcp.subnet = '10.78.0.0/24'; }, /does not contain serverAddress/],
    ['dhcp.pool.start', (d: any) => { d.dhcp.pool.start = '10.78.0.5'; }, /outside/],
    ['http.threads', (d: any) => { d.http = { threads: 0 }; }, /0/],
    ['dhcp.pool', (d: any) => { d.dhcp.pool = { start: '10.77.0.150', end: '10.77.0.100' }; }, /after end/],
    ['dhcp.pool', (d: any) => { d.dhcp.pool = { start: '10.77.0.1', end: '10.77.0.10' }; }, /contains serverAddress/],
    ['dhcp.leaseTime', (d: any) => { d.dhcp.leaseTime = 'forever'; }, /duration/],
    ['dhcp.rogueCheckInterval', (d: any) => { d.dhcp.rogueCheckInterval = -5; }, /between 0 s/],
    ['roots.proxy', (d: any) => { d.roots = { proxy: 'squid:3128' }; }, /http:\/\/ URL of a proxy/],
    ['dhcp.registeredPool', (d: any) => { d.dhcp.registeredPool = { start: '10.77.0.140', end: '10.77.0.160' }; }, /overlaps dhcp.pool/],
    ['dhcp.unknownClients', (d: any) => { d.dhcp.unknownClients = 'maybe'; }, /one of pool, ignore/],
    ['dhcp.ackAfterFsync', (d: any) => { d.dhcp.ackAfterFsync = 'no'; }, /must be true or false/],
    ['dhcp.routr', (d: any) => { d.dhcp.routr = '10.77.0.1'; }, /unknown key/],
    ['dataDir', (d: any) => { d.dataDir = 'relative/dir'; }, /absolute path/],
    ['tftp.root', (d: any) => { delete d.tftp.root; }, /is required/],
    ['http.port', (d: any) => { d.http.port = 70000; }, /between 1 and 65535/],
    ['tftp.threads', (d: any) => { d.tftp.threads = 0; }, /between 1 and 64/],
    ['dhcp.dns[1]', (d: any) => { d.dhcp.dns = ['10.77.0.1', 'dns.example']; }, /not an IPv4 address/],
    ['boot.defaults.loader', (d: any) => { d.boot = { defaults: { loader: 'grub' } }; }, /pxelinux, lpxelinux, ipxe/],
    ['dhcp.relays[0].router', (d: any) => { d.dhcp.relays = [{ subnet: '10.88.0.0/24', router: '10.77.0.1' }]; }, /outside/],
  ])('names the key %s when it is wrong', (key, edit, problem) => {
    const e = errorOf(edit);
    expect(e.key).toBe(key);
    expect(e.message).toMatch(problem);
  });

  it('parses durations', () => {
    const d: any = baseConfigDoc('/tmp/x');
    d.dhcp.leaseTime = '12h';
    expect(validateConfig(d).dhcp.leaseTime).toBe(43200);
    // The rogue DHCP check may probe more often than a minute (and 0 turns it off).
    d.dhcp.rogueCheckInterval = '10s';
    expect(validateConfig(d).dhcp.rogueCheckInterval).toBe(10);
    d.dhcp.rogueCheckInterval = 0;
    expect(validateConfig(d).dhcp.rogueCheckInterval).toBe(0);
  });

  it('reports YAML syntax errors with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidereal-cfg-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'dhcp: [unclosed\n');
    expect(() => loadConfig(f)).toThrow(/bad\.yaml is not valid YAML/);
    expect(() => loadConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('the shipped example', () => {
  it('is a valid config', () => {
    const c = loadConfig(new URL('../../examples/sidereal.yaml', import.meta.url).pathname);
    expect(c.interface).toBe('eth1');
    expect(c.dhcp.leaseTime).toBe(43200);
  });
});
