import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectFormat, parseImport } from '../../server/import/index.js';
import { parseDhcpd } from '../../server/import/parse-dhcpd.js';
import { parseDnsmasq } from '../../server/import/parse-dnsmasq.js';
import { parseEthers } from '../../server/import/parse-ethers.js';
import { parseCsv, readCsv } from '../../server/import/parse-csv.js';
import type { ParseProblem } from '../../server/import/types.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/import', name), 'utf8');

describe('dhcpd.conf', () => {
  const { records, problems } = parseDhcpd(fixture('dhcpd.conf'));

  it('finds the four hosts at every depth, and nothing in classes, comments or strings', () => {
    expect(problems).toEqual([]);
    expect(records.map((r) => [r.line, r.mac])).toEqual([
      [24, '08:00:AA:BB:CC:DD'], [33, '52:54:00:77:00:11'], [43, '52:54:00:77:00:12'], [51, '52:54:00:77:00:13'],
    ]);
  });

  it('takes the name from option host-name, else a valid block name', () => {
    expect(records[0]).toEqual({ line: 24, mac: '08:00:AA:BB:CC:DD', hostname: 'master', ipv4: '10.77.0.253' });
    expect(records[1]).toMatchObject({ hostname: 'node11', ipv4: '10.77.0.11' });
    const bad = parseDhcpd('host node_7 { hardware ethernet 52:54:00:00:00:07; }').records[0]!;
    expect(bad.hostname).toBeUndefined();
    expect(bad.note).toMatch(/node_7.*not an RFC 1123 name/);
  });

  it('pads one-digit bytes and reports a per-host boot file as not imported', () => {
    expect(records[2]).toMatchObject({ mac: '52:54:00:77:00:12', hostname: 'node12', ipv4: '10.77.0.12' });
    expect(records[2]!.note).toBe('not imported: per-host boot file (filename/next-server), use a group');
  });

  it('refuses a fixed-address that is a host name', () => {
    expect(records[3]).toMatchObject({ hostname: 'node13', refused: { field: 'ipv4', reason: expect.stringMatching(/node13.lab.sidereal is a host name, not an IPv4/) } });
    expect(records[3]!.ipv4).toBeUndefined();
  });

  it('refuses several fixed addresses and non-Ethernet hardware, notes other host statements', () => {
    const { records: rs } = parseDhcpd(`host a { hardware ethernet 52:54:00:00:00:0a; fixed-address 10.77.0.10, 10.77.0.11; }
host b { hardware token-ring 52:54:00:00:00:0b; }
host c { hardware ethernet 52:54:00:00:00:0c; option routers 10.77.0.254; ddns-hostname "cc"; }`);
    expect(rs[0]!.refused).toEqual({ field: 'ipv4', reason: expect.stringMatching(/lists 2 addresses/) });
    expect(rs[1]!.refused).toEqual({ field: 'mac', reason: expect.stringMatching(/token-ring .* is not an Ethernet MAC/) });
    expect(rs[2]!.note).toBe('not imported: option routers 10.77.0.254; not imported: ddns-hostname "cc"');
  });

  it('reports syntax problems with their lines', () => {
    expect(parseDhcpd('subnet 10.0.0.0 netmask 255.0.0.0 {\n host a {\n hardware ethernet 52:54:00:00:00:0a;\n').problems)
      .toEqual([{ line: 2, message: 'host a { is not closed (missing })' }, { line: 1, message: 'block opened here is not closed (missing })' }]);
    expect(parseDhcpd('host a {\n fixed-address 10.77.0.5;\n}\n}\n').problems).toEqual([
      { line: 1, message: 'host a has no hardware ethernet: nothing to register it by' }, { line: 4, message: 'unexpected }' },
    ]);
    expect(parseDhcpd('host a { hardware ethernet 52:54:00:00:00:0a }').records[0]!.mac).toBe('52:54:00:00:00:0a');
    expect(parseDhcpd('option x "open\n\n').problems).toContainEqual({ line: 1, message: 'string is not closed (missing ")' });
  });
});

describe('dnsmasq', () => {
  const { records, problems } = parseDnsmasq(fixture('dnsmasq.conf'));

  it('reads every dhcp-host form and skips the other options', () => {
    expect(problems).toEqual([]);
    expect(records.map((r) => r.line)).toEqual([13, 14, 15, 16, 17, 18, 19]);
    expect(records[0]).toEqual({ line: 13, mac: '52:54:00:77:00:20', ipv4: '10.77.0.20' });
    expect(records[1]).toEqual({ line: 14, mac: '52:54:00:77:00:21', hostname: 'node21', ipv4: '10.77.0.21' });
    expect(records[2]).toMatchObject({ mac: '52:54:00:77:00:22', hostname: 'node22', ipv4: '10.77.0.22', note: expect.stringMatching(/lease time infinite/) });
    expect(records[3]).toMatchObject({ mac: '52:54:00:77:00:23', hostname: 'node23', ipv4: '10.77.0.23' });
    expect(records[3]!.note).toMatch(/tag set:gpu.*lease time 12h/);
  });

  it('refuses client ids, several MACs in one entry (not split) and ignore', () => {
    expect(records[4]!.refused).toEqual({ field: 'mac', reason: expect.stringMatching(/id:01:52:54:00:77:00:24 is a DHCP client identifier, not a MAC/) });
    expect(records[5]).toMatchObject({ mac: '52:54:00:77:00:25,52:54:00:77:00:26', refused: { field: 'mac', reason: expect.stringMatching(/several MACs .* not split/) } });
    expect(records[6]!.refused?.reason).toMatch(/dnsmasq ignores this MAC/);
  });

  it('reads a dhcp-hostsfile (no prefix), wildcards, hardware types and bad lines', () => {
    const r = parseDnsmasq('# hosts file\n52:54:00:77:00:50,node50,10.77.0.50\n01-52:54:00:77:00:51,10.77.0.51\n52:54:00:77:00:*,10.77.0.52\n52:54:00:77:00:53,10.77.0.53,10.77.0.54\n52:54:00:77:00:55,a,b\nfoo=bar\n');
    expect(r.records).toEqual([
      { line: 2, mac: '52:54:00:77:00:50', hostname: 'node50', ipv4: '10.77.0.50' },
      { line: 3, mac: '52:54:00:77:00:51', ipv4: '10.77.0.51' },
      { line: 4, mac: '52:54:00:77:00:*', ipv4: '10.77.0.52', refused: { field: 'mac', reason: expect.stringMatching(/wildcard/) } },
    ]);
    expect(r.problems).toEqual([
      { line: 5, message: 'two addresses (10.77.0.53, 10.77.0.54) in one dhcp-host' },
      { line: 6, message: 'more than one name (a, b) in one dhcp-host' },
    ]);
  });
});

describe('/etc/ethers', () => {
  it('reads a name or an address, pads one-digit bytes, skips comments', () => {
    const { records, problems } = parseEthers(fixture('ethers'));
    expect(records).toEqual([
      { line: 2, mac: '52:54:00:77:00:30', hostname: 'node30' },
      { line: 3, mac: '08:00:27:0a:0b:0c', ipv4: '10.77.0.31' },
    ]);
    expect(problems).toEqual([{ line: 5, message: 'expected "MAC hostname-or-address", got 3 fields' }]);
  });
});

describe('CSV', () => {
  it('reads RFC 4180: quotes, doubled quotes, CRLF, a line break inside quotes', () => {
    const problems: ParseProblem[] = [];
    expect(readCsv('a,"b,c","say ""hi"""\r\n"x\ny",,\n', problems)).toEqual([
      { line: 1, fields: ['a', 'b,c', 'say "hi"'] }, { line: 2, fields: ['x\ny', '', ''] },
    ]);
    expect(problems).toEqual([]);
    readCsv('a,"open\n', problems);
    expect(problems).toEqual([{ line: 1, message: 'quoted field is not closed (missing ")' }]);
  });

  it('maps the columns (aliases, any case) and keeps each row\'s first line', () => {
    const { records, problems } = parseCsv(fixture('machines.csv'));
    expect(records).toEqual([
      { line: 2, mac: '52:54:00:77:00:40', hostname: 'node40', ipv4: '10.77.0.40', root: 'lab', bootMode: 'root', kernelArgs: 'console=ttyS0,115200 quiet' },
      { line: 3, mac: '52-54-00-77-00-41', hostname: 'node41', ipv4: '10.77.0.41', bootMode: 'maintenance', kernelArgs: 'say "hi"' },
      { line: 4, mac: '5254.0077.0042', hostname: 'node42', kernelArgs: 'two\r\nlines' },
      { line: 7, mac: '52:54:00:77:00:43', hostname: 'node43', ipv4: '10.77.0.43' },
    ]);
    expect(problems).toEqual([{ line: 8, message: '2 fields where the header has 7' }]);
  });

  it('refuses the file on an unknown column, naming it, or without a mac column', () => {
    const r = parseCsv('mac,hostnmae\n52:54:00:77:00:40,node40\n');
    expect(r.records).toEqual([]);
    expect(r.problems).toEqual([{ line: 1, message: 'unknown column "hostnmae": the columns are mac, hostname, ipv4 (or ip), group, root, bootMode (or mode), kernelArgs' }]);
    expect(parseCsv('hostname,ip\nnode40,10.77.0.40\n').problems[0]!.message).toMatch(/no mac column/);
    expect(parseCsv('mac,ip,ipv4\n').problems[0]!.message).toMatch(/"ipv4" repeats ipv4/);
  });
});

describe('detectFormat', () => {
  it('tells each fixture by name and by content', () => {
    for (const [file, format] of [['dhcpd.conf', 'dhcpd'], ['dnsmasq.conf', 'dnsmasq'], ['ethers', 'ethers'], ['machines.csv', 'csv']] as const) {
      expect(detectFormat(fixture(file), `/etc/${file}`)).toBe(format);
      expect(detectFormat(fixture(file))).toBe(format);
      expect(parseImport(fixture(file), format).records.length).toBeGreaterThan(0);
    }
  });

  it('tells a dhcp-hostsfile and a headerless file apart, and gives up on prose', () => {
    expect(detectFormat('52:54:00:77:00:50,node50,10.77.0.50\n')).toBe('dnsmasq');
    expect(detectFormat('id:01:02:03,10.77.0.5\n')).toBe('dnsmasq');
    expect(detectFormat('# c\n52:54:00:77:00:50 node50\n')).toBe('ethers');
    expect(detectFormat('subnet 10.77.0.0 netmask 255.255.255.0 {\n}\n')).toBe('dhcpd');
    expect(detectFormat('# host old {\n')).toBeUndefined();
    expect(detectFormat('hello world\n')).toBeUndefined();
    expect(detectFormat('', 'x.txt')).toBeUndefined();
  });
});
