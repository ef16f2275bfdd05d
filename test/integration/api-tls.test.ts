/**
 * The admin API off loopback (issue 7): `serve` refuses to start without TLS, starts with
 * `--insecure` (and says so), and with api.tls speaks HTTPS that curl and the CLI (trusting
 * the certificate through NODE_EXTRA_CA_CERTS) accept. The daemon runs in a namespace this
 * test makes, on a veth address; nothing touches the host's interfaces.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNs, destroyAll, linkNamespaces, nsExec } from '../helpers/netns.js';
import { cli, siderealBin, startServe, writeConfig } from '../helpers/serve.js';

const ADDR = '10.79.0.1';
let dir: string;
let ns: string;
let token: string;

const config = (name: string, api: Record<string, unknown>) => writeConfig(join(dir, `${name}.yaml`), {
  serverAddress: ADDR, dataDir: join(dir, 'data'),
  dhcp: { enabled: false, subnet: '10.79.0.0/24' }, tftp: { enabled: false, root: join(dir, 'tftp') },
  http: { listen: ADDR, port: 18580 }, api: { listen: ADDR, port: 18581, ...api },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sidereal-api-tls-'));
  mkdirSync(join(dir, 'tftp'));
  ns = await createNs('api');
  const peer = await createNs('apc');
  await linkNamespaces(ns, `${ADDR}/24`, peer, null, 'a');
  // A self-signed certificate for the veth address.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${ADDR}`, '-addext', `subjectAltName=IP:${ADDR}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const made = await cli(config('plain', {}), '--json', 'token', 'create', '--name', 'tls-test', '--role', 'admin');
  expect(made.code, made.stderr).toBe(0);
  token = JSON.parse(made.stdout).token;
}, 120_000);

afterAll(async () => {
  await destroyAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('the admin API off loopback', () => {
  it('without TLS, serve refuses to start and names api.listen', async () => {
    const r = await nsExec(ns, process.execPath, [siderealBin, '--config', config('plain', {}), 'serve'], { reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(/api\.listen: 10\.79\.0\.1 is not a loopback address.*api\.tls.*--insecure/);
  });

  it('with --insecure it starts, and warns', async () => {
    const served = await startServe(ns, config('plain', {}), ['--insecure']);
    try {
      expect(served.lines.some((l) => l.msg === 'the admin API listens without TLS on a non-loopback address (--insecure)')).toBe(true);
      const r = await nsExec(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${ADDR}:18581/api/v1/status`], { reject: false });
      expect(String(r.stdout)).toBe('401');
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  it('with api.tls it speaks HTTPS only; curl and the CLI trust the certificate they are given', async () => {
    const file = config('tls', { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    const served = await startServe(ns, file);
    try {
      const https = await nsExec(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(dir, 'cert.pem'), `https://${ADDR}:18581/api/v1/status`], { reject: false });
      expect(String(https.stdout)).toBe('401');
      const plain = await nsExec(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${ADDR}:18581/api/v1/status`], { reject: false });
      expect(String(plain.stdout)).not.toBe('401'); // not an HTTP answer: the port speaks TLS
      const status = await nsExec(ns, process.execPath, [siderealBin, '--config', file, '--json', 'status'], {
        reject: false, timeout: 30_000, env: { SIDEREAL_TOKEN: token, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      });
      expect(status.exitCode, String(status.stderr)).toBe(0);
      expect(JSON.parse(String(status.stdout)).daemon.running).toBe(true);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  it('a missing key file is an error naming api.tls.key', async () => {
    const file = config('nokey', { tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'missing.pem') } });
    const r = await nsExec(ns, process.execPath, [siderealBin, '--config', file, 'serve'], { reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(/api\.tls\.key: cannot read .*missing\.pem: ENOENT/);
  });
});
