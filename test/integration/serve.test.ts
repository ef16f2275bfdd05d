/**
 * The whole daemon, as an admin runs it: `sidereal serve` in a namespace on
 * a veth, the CLI writing the inventory while it runs, and real clients
 * (busybox udhcpc, tftp-hpa, curl) in a second namespace. Proves the boot
 * path is live: a registration or change is seen at the very next request.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNs, linkNamespaces, nsExec, destroyAll } from '../helpers/netns.js';
import { udhcpc, writeClientScripts } from '../helpers/dhcp-ns.js';
import { cli, cliIn, startServe, writeConfig, type Served } from '../helpers/serve.js';

const MAC = '52:54:00:77:00:10';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sidereal serve with real clients', () => {
  let dir: string;
  let config: string;
  let srv: string;
  let cliNs: string;
  let cliIf: string;
  let served: Served | undefined;
  let scripts: { udhcpc: string };
  let token: string;
  // The admin API listens on the server namespace's loopback: the CLI runs there, as an admin on the server would.
  const live = (...args: string[]) => cliIn(srv, config, token, ...args);
  const kernel = randomBytes(3 * 1024 * 1024 + 17);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidereal-serve-'));
    const tftp = join(dir, 'tftp');
    mkdirSync(join(tftp, 'efi64'), { recursive: true });
    writeFileSync(join(tftp, 'pxelinux.0'), 'not really pxelinux');
    writeFileSync(join(tftp, 'vmlinuz-6.1.0@lab'), kernel);
    writeFileSync(join(tftp, 'initrd.img-6.1.0@lab'), 'initrd');
    srv = await createNs('srv');
    cliNs = await createNs('cli');
    const link = await linkNamespaces(srv, '10.77.0.1/24', cliNs, null, 's');
    cliIf = link.bIf;
    await nsExec(cliNs, 'ip', ['link', 'set', 'dev', cliIf, 'address', MAC]);
    scripts = writeClientScripts(dir);
    config = writeConfig(join(dir, 'sidereal.yaml'), {
      interface: link.aIf,
      serverAddress: '10.77.0.1',
      dataDir: join(dir, 'data'),
      dhcp: { subnet: '10.77.0.0/24', router: '10.77.0.1', leaseTime: 600, pool: { start: '10.77.0.100', end: '10.77.0.110' }, unknownClients: 'pool' },
      tftp: { root: tftp },
      http: { port: 8080 },
    });
    const made = await cli(config, '--json', 'token', 'create', '--name', 'cli-test', '--role', 'admin');
    expect(made.code, made.stderr).toBe(0);
    token = JSON.parse(made.stdout).token;
    // Before the daemon runs, the CLI works on the inventory file (--offline), through the same API code.
    expect((await cli(config, '--offline', 'root', 'add', 'lab', '--kernel', 'vmlinuz-6.1.0@lab', '--initrd', 'initrd.img-6.1.0@lab', '--nfs-path', '/srv/sidereal/roots/lab', '--kernel-args', 'console=ttyS0')).code).toBe(0);
    served = await startServe(srv, config);
  }, 120_000);

  afterAll(async () => {
    expect(await served?.stop()).toBe(0);
    await destroyAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('offers an unknown client a pool address and the BIOS bootloader', async () => {
    const r = await udhcpc(cliNs, cliIf, scripts.udhcpc);
    expect(r.env.ip).toMatch(/^10\.77\.0\.(10\d|110)$/);
    expect(r.env.boot_file).toBe('pxelinux.0');
    expect(r.env.siaddr).toBe('10.77.0.1');
  });

  it('gives the static lease and host name as soon as the MAC is registered, with no restart', async () => {
    const add = await live('machine', 'add', MAC.toUpperCase().replace(/:/g, '-'), '--hostname', 'node01', '--ip', '10.77.0.10', '--root', 'lab');
    expect(add.code, add.stderr).toBe(0);
    const r = await udhcpc(cliNs, cliIf, scripts.udhcpc, ['-x', '0x5d:0007']);
    expect(r.env).toMatchObject({ ip: '10.77.0.10', hostname: 'node01', boot_file: 'efi64/syslinux.efi', siaddr: '10.77.0.1' });
    await nsExec(cliNs, 'ip', ['addr', 'add', '10.77.0.10/24', 'dev', cliIf]);
  });

  it('serves the per-MAC menu over TFTP (tftp-hpa) and follows a change at the next request', async () => {
    const out = join(dir, 'menu');
    await nsExec(cliNs, 'timeout', ['30', 'tftp', '-m', 'binary', '10.77.0.1', '-c', 'get', 'efi64/pxelinux.cfg/01-52-54-00-77-00-10', out]);
    expect(readFileSync(out, 'utf8')).toMatch(/sidereal\.hostname=node01 sidereal\.url=http:\/\/10\.77\.0\.1:8080 console=ttyS0/);
    expect((await live('machine', 'set', MAC, '--hostname', 'node02', '--mode', 'maintenance')).code).toBe(0);
    await nsExec(cliNs, 'timeout', ['30', 'tftp', '-m', 'binary', '10.77.0.1', '-c', 'get', 'efi64/pxelinux.cfg/01-52-54-00-77-00-10', out]);
    const menu = readFileSync(out, 'utf8');
    expect(menu).toMatch(/ rw sidereal\.overlay=none sidereal\.hostname=node02/);
  });

  it('serves the kernel byte-exact over TFTP (curl, blksize 1468) and HTTP', async () => {
    const out = join(dir, 'k1');
    await nsExec(cliNs, 'curl', ['-sS', '--max-time', '60', '--tftp-blksize', '1468', '-o', out, 'tftp://10.77.0.1/efi64/vmlinuz-6.1.0@lab']);
    expect(sha(readFileSync(out))).toBe(sha(kernel));
    const out2 = join(dir, 'k2');
    await nsExec(cliNs, 'curl', ['-sS', '--max-time', '60', '-o', out2, 'http://10.77.0.1:8080/files/vmlinuz-6.1.0@lab']);
    expect(sha(readFileSync(out2))).toBe(sha(kernel));
    const script = await nsExec(cliNs, 'curl', ['-sS', '--max-time', '20', `http://10.77.0.1:8080/boot/${MAC}.ipxe`]);
    expect(String(script.stdout)).toMatch(/^#!ipxe/);
  });

  it('records the boot timeline and logs one JSON line per exchange and transfer with the MAC', async () => {
    // The root's sidereal-booted unit closes the timeline; believed only from the leased address.
    const report = (body: Record<string, unknown>) => nsExec(cliNs, 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}',
      '-H', 'content-type: application/json', '-d', JSON.stringify(body), 'http://10.77.0.1:8080/boot/booted']);
    expect(String((await report({ mac: MAC, ip: '10.77.0.99', uptime: 40 })).stdout)).toBe('403');
    expect(String((await report({ mac: MAC, ip: '10.77.0.10', uptime: 'soon' })).stdout)).toBe('400');
    expect(String((await report({ mac: MAC, ip: '10.77.0.10', uptime: 40.5, nfsMountedAt: 12.25, hostname: 'node02', kernel: '6.1.0-test' })).stdout)).toBe('204');
    const ev = await live('--json', 'machine', 'events', MAC);
    const events = JSON.parse(ev.stdout) as Array<{ stage: string; detail: Record<string, unknown> }>;
    expect(events.some((e) => e.stage === 'dhcp' && e.detail.type === 'REQUEST')).toBe(true);
    expect(events.some((e) => e.stage === 'tftp' && e.detail.file === 'efi64/pxelinux.cfg/01-52-54-00-77-00-10')).toBe(true);
    expect(events.some((e) => e.stage === 'tftp' && e.detail.file === 'efi64/vmlinuz-6.1.0@lab' && e.detail.bytes === kernel.length)).toBe(true);
    expect(events.some((e) => e.stage === 'http' && e.detail.file === 'vmlinuz-6.1.0@lab')).toBe(true);
    expect(events.slice(-1)[0]).toMatchObject({ stage: 'booted', detail: { ip: '10.77.0.10', hostname: 'node02', kernel: '6.1.0-test' } });
    const at = (stage: string) => (events as Array<{ stage: string; at: number }>).find((e) => e.stage === stage)!.at;
    expect(at('booted') - at('kernel')).toBeCloseTo(40_500, -2);
    expect(at('nfs') - at('kernel')).toBeCloseTo(12_250, -2);
    expect(served!.lines.some((l) => l.msg === 'boot report refused' && l.mac === MAC)).toBe(true);
    // Seconds to each stage of the last boot: in the API (machine show), and in the daemon's log line.
    const show = JSON.parse((await live('--json', 'machine', 'show', MAC)).stdout) as { stages: Record<string, number> };
    expect(Object.keys(show.stages)).toEqual(['dhcp', 'files', 'kernel', 'nfs', 'booted']);
    expect(show.stages.booted! - show.stages.kernel!).toBeCloseTo(40.5, 0);
    // (This report's made-up uptime puts the kernel before the DHCP exchanges above: only the keys are checked.)
    expect(Object.keys(served!.lines.find((l) => l.msg === 'node booted' && l.mac === MAC)?.stages as object)).toEqual(['dhcp', 'files', 'kernel', 'nfs', 'booted']);
    const text = await live('events', MAC);
    expect(text.stdout).toMatch(/^\+ *\d+\.\d\d s {2}tftp/m);
    expect(served!.lines.some((l) => l.svc === 'dhcp' && l.mac === MAC && l.xid)).toBe(true);
    // the kernel's line too: the MAC comes from the peer's lease, not only from a per-MAC file name
    expect(served!.lines.some((l) => l.svc === 'tftp' && l.mac === MAC && l.file === 'efi64/vmlinuz-6.1.0@lab' && typeof l.ms === 'number')).toBe(true);
  });

  it('explain prints what the running server answers', async () => {
    const e = await live('explain', MAC, '--arch', 'efi64');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^ {2}yiaddr {2}10\.77\.0\.10$/m);
    expect(e.stdout).toMatch(/^ {2}file {4}efi64\/syslinux\.efi$/m);
    expect(e.stdout).toContain('efi64/pxelinux.cfg/01-52-54-00-77-00-10:');
    expect(e.stdout).toMatch(/sidereal\.hostname=node02/);
    expect((await live('explain', MAC, '--arch', 'sparc')).code).toBe(2);
  });

  it('a registration through the admin API is in the very next DHCP reply', async () => {
    const made = await cli(config, '--json', 'token', 'create', '--name', 'it-admin', '--role', 'admin');
    expect(made.code, made.stderr).toBe(0);
    const token = JSON.parse(made.stdout).token as string;
    // The API listens on the server namespace's loopback: call it from there, as an admin on the server would.
    const api = (method: string, url: string, body?: unknown) => nsExec(srv, 'curl', ['-sS', '--max-time', '20', '-X', method,
      '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', ...(body ? ['--data', JSON.stringify(body)] : []),
      '-w', '\n%{http_code}', `http://127.0.0.1:8081${url}`]).then((r) => {
      const out = String(r.stdout);
      const cut = out.lastIndexOf('\n');
      return { status: Number(out.slice(cut + 1)), body: JSON.parse(out.slice(0, cut) || 'null') };
    });
    expect((await api('PATCH', `/api/v1/machines/${MAC}`, { ipv4: '10.77.0.20', hostname: 'node20' })).status).toBe(200);
    const r = await udhcpc(cliNs, cliIf, scripts.udhcpc);
    expect(r.env).toMatchObject({ ip: '10.77.0.20', hostname: 'node20' });
    const bad = await api('POST', '/api/v1/machines', { mac: MAC });
    expect(bad).toMatchObject({ status: 409, body: { error: 'conflict', field: 'mac' } });
    const audit = await api('GET', `/api/v1/audit?target=${MAC}`);
    expect(audit.body.items[0]).toMatchObject({ actor: 'token:it-admin', action: 'machine.update', after: { ipv4: '10.77.0.20' } });
    // the CLI's writes are audited too
    expect(audit.body.items.map((e: { actor: string; action: string }) => `${e.actor} ${e.action}`)).toEqual(['token:it-admin machine.update', 'token:cli-test machine.update', 'token:cli-test machine.add']);
    expect((await api('PATCH', `/api/v1/machines/${MAC}`, { ipv4: '10.77.0.10', hostname: 'node02' })).status).toBe(200);
  });

  it('exposes Prometheus metrics of what it served on the admin listener', async () => {
    const r = await nsExec(srv, 'curl', ['-sS', '--max-time', '20', 'http://127.0.0.1:8081/metrics']);
    const text = String(r.stdout);
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^sidereal_dhcp_packets_total\{type="DISCOVER",outcome="offer"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^sidereal_dhcp_packets_total\{type="REQUEST",outcome="ack"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^sidereal_tftp_transfers_total\{outcome="ok"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^sidereal_tftp_bytes_total (\d+)$/m)).toBeGreaterThan(kernel.length);
    expect(value(/^sidereal_http_boot_fetches_total\{kind="file",status="200"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^sidereal_dhcp_leases_active (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^sidereal_machines\{state="maintenance"\} (\d+)$/m)).toBe(1);
  });

  it('the CLI over the API: status, groups, listing, discovery, and exit codes scripts can trust', async () => {
    const st = JSON.parse((await live('--json', 'status')).stdout);
    expect(st.daemon.running).toBe(true);
    expect(st.daemon.services.dhcp.interface).toBeTruthy();
    expect(st.inventory.machines).toBe(1);
    expect((await live('group', 'add', 'compute', '--loader', 'ipxe')).code).toBe(0);
    expect((await live('group', 'add', 'compute')).code).toBe(1);                      // 409: exists
    expect((await live('machine', 'add', '52:54:00:77:00:31', '--group', 'nope')).code).toBe(1);  // 422
    const list = JSON.parse((await live('--json', 'machine', 'list', '--status', 'online')).stdout);
    expect(list.items.map((m: { mac: string }) => m.mac)).toEqual([MAC]);
    expect(JSON.parse((await live('--json', 'discovered', 'list')).stdout)).toEqual([]);
    const noAuth = await cliIn(srv, config, 'sdr_wrong', 'machine', 'list');
    expect(noAuth.code).toBe(4);
    expect(noAuth.stderr).toMatch(/authorization: the token is unknown or revoked/);
    const down = await live('--url', 'http://127.0.0.1:9', 'machine', 'list');
    expect(down.code).toBe(5);
    expect(down.stderr).toMatch(/cannot reach the API at http:\/\/127\.0\.0\.1:9/);
    const noToken = await cli(config, 'machine', 'list');
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no API token/);
  });

  it('refuses bad input from the CLI naming the field, and the daemon keeps serving', async () => {
    const bad = await live('machine', 'add', '01:00:5e:00:00:01');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/mac: .*multicast/);
    const dup = await live('machine', 'add', '52:54:00:77:00:99', '--ip', '10.77.0.10');
    expect(dup.stderr).toMatch(/ipv4: 10\.77\.0\.10 is held by node02/);
    expect(served!.alive()).toBe(true);
    const r = await udhcpc(cliNs, cliIf, scripts.udhcpc);
    expect(r.env.ip).toBe('10.77.0.10');
  });
});
