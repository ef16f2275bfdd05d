/**
 * One fuzz campaign over both protocols, for the CI test (100,000 packets of
 * each) and `npm run fuzz` (1,000,000): the DHCP and TFTP fuzzers, then
 * tshark over a sample of what the servers sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dhcpFixture, fuzzDhcp, type DhcpFuzzStats } from './dhcp-fuzz.js';
import { exposeGc } from './mutate.js';
import { fuzzTftp, tftpFuzzRoot, type TftpFuzzStats } from './tftp-fuzz.js';
import { PcapWriter, type TsharkFinding } from './tshark.js';

export interface FuzzReport {
  seed: number;
  dhcp: DhcpFuzzStats & { seconds: number; tsharkFrames: number; tsharkFindings: TsharkFinding[] };
  tftp: TftpFuzzStats & { seconds: number; tsharkFrames: number; tsharkFindings: TsharkFinding[] };
}

export async function runFuzz(packets: number, seed: number, log: (line: string) => void = () => {}): Promise<FuzzReport> {
  await exposeGc();
  let t0 = performance.now();
  const f = dhcpFixture();
  let dhcp: DhcpFuzzStats;
  const dhcpPcap = new PcapWriter();
  try {
    dhcp = fuzzDhcp(f, packets, seed, dhcpPcap, packets > 100_000 ? 10 : 1);
    const dup = f.inv.db.prepare("SELECT ipv4, count(*) AS n FROM leases WHERE state = 'bound' GROUP BY ipv4 HAVING n > 1").all();
    if (dup.length) dhcp.violations.push(`addresses bound to two MACs: ${JSON.stringify(dup)}`);
    const integrity = f.inv.db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') dhcp.violations.push(`integrity_check: ${String(integrity)}`);
  } finally {
    f.cleanup();
  }
  const dhcpSeconds = (performance.now() - t0) / 1000;
  log(`dhcp: ${dhcp.fed} packets in ${dhcpSeconds.toFixed(1)} s, ${dhcp.violations.length} violations`);
  const dt = dhcpPcap.findings();
  log(`dhcp: tshark read ${dt.frames} replies, ${dt.findings.length} findings`);

  t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-fuzz-tftp-'));
  let tftp: TftpFuzzStats;
  const tftpPcap = new PcapWriter();
  try {
    await tftpFuzzRoot(dir);
    tftp = await fuzzTftp(dir, packets, seed, tftpPcap, packets > 100_000 ? 10 : 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const tftpSeconds = (performance.now() - t0) / 1000;
  log(`tftp: ${tftp.fed} datagrams in ${tftpSeconds.toFixed(1)} s, ${tftp.violations.length} violations`);
  const tt = tftpPcap.findings();
  log(`tftp: tshark read ${tt.frames} replies, ${tt.findings.length} findings`);

  return {
    seed,
    dhcp: { ...dhcp, seconds: dhcpSeconds, tsharkFrames: dt.frames, tsharkFindings: dt.findings },
    tftp: { ...tftp, seconds: tftpSeconds, tsharkFrames: tt.frames, tsharkFindings: tt.findings },
  };
}
