/**
 * Leases, persisted on every ACK so they survive a restart (the DHCP server
 * keeps offers in memory only, as dnsmasq does). Implements the DHCP
 * server's LeaseStore.
 */
import type { Db } from './db.js';

export interface LeaseRecord {
  mac: string;
  ipv4: string;
  hostname: string | null;
  state: 'bound' | 'released' | 'declined';
  expiresAt: number;
}

interface Row { mac: string; ipv4: string; hostname: string | null; state: LeaseRecord['state']; expires_at: number }
const toLease = (r: Row): LeaseRecord => ({ mac: r.mac, ipv4: r.ipv4, hostname: r.hostname, state: r.state, expiresAt: r.expires_at });

export class Leases {
  private readonly byMacStmt;
  private readonly byIpStmt;
  private readonly upsertTx;
  private readonly declineTx;

  constructor(private readonly db: Db) {
    this.byMacStmt = db.prepare<[string], Row>('SELECT * FROM leases WHERE mac = ?');
    this.byIpStmt = db.prepare<[string], Row>('SELECT * FROM leases WHERE ipv4 = ?');
    const del = db.prepare('DELETE FROM leases WHERE ipv4 = ? AND mac != ?');
    const ins = db.prepare(`INSERT INTO leases (mac, ipv4, hostname, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(mac) DO UPDATE SET ipv4 = excluded.ipv4, hostname = excluded.hostname, state = excluded.state,
        expires_at = excluded.expires_at, updated_at = excluded.updated_at`);
    // One address, one holder: a new binding replaces whatever stale record held the address.
    this.upsertTx = db.transaction((l: LeaseRecord) => {
      del.run(l.ipv4, l.mac);
      ins.run(l.mac, l.ipv4, l.hostname, l.state, l.expiresAt, Date.now());
    });
    this.declineTx = this.upsertTx;
  }

  byMac(mac: string): LeaseRecord | undefined {
    const r = this.byMacStmt.get(mac);
    return r ? toLease(r) : undefined;
  }

  byIp(ipv4: string): LeaseRecord | undefined {
    const r = this.byIpStmt.get(ipv4);
    return r ? toLease(r) : undefined;
  }

  upsert(lease: LeaseRecord): void {
    this.upsertTx.immediate(lease);
  }

  release(mac: string): void {
    this.db.prepare("UPDATE leases SET state = 'released', expires_at = ?, updated_at = ? WHERE mac = ?").run(Date.now(), Date.now(), mac);
  }

  /** The address is recorded under the decliner's MAC in state `declined` so the pool skips it until `until`. */
  decline(ipv4: string, mac: string, until: number): void {
    this.declineTx.immediate({ mac, ipv4, hostname: null, state: 'declined', expiresAt: until });
  }

  list(): LeaseRecord[] {
    return (this.db.prepare('SELECT * FROM leases ORDER BY ipv4').all() as Row[]).map(toLease);
  }

  activeCount(now = Date.now()): number {
    return (this.db.prepare("SELECT count(*) AS n FROM leases WHERE state = 'bound' AND expires_at > ?").get(now) as { n: number }).n;
  }
}
