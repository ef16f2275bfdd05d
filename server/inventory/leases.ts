/**
 * Leases, persisted on every ACK so they survive a restart (the DHCP server
 * keeps offers in memory only, as dnsmasq does). Implements the DHCP
 * server's LeaseStore.
 */
import { durableWalPath, withoutFsync, type Db } from './db.js';
import { WalSync } from './wal-sync.js';

export interface LeaseRecord {
  mac: string;
  ipv4: string;
  hostname: string | null;
  state: 'bound' | 'released' | 'declined';
  expiresAt: number;
}

interface Staged { rec: LeaseRecord | null; batch: number }

interface Row { mac: string; ipv4: string; hostname: string | null; state: LeaseRecord['state']; expires_at: number }
const toLease = (r: Row): LeaseRecord => ({ mac: r.mac, ipv4: r.ipv4, hostname: r.hostname, state: r.state, expiresAt: r.expires_at });

export interface FlushOptions {
  /** false: return once the batch is in the WAL and let its fsync run behind (dhcp.ackAfterFsync false). */
  waitForDisk?: boolean;
  /** A background fsync failed; `failures` counts them all (syncErrors). */
  onSyncError?: (err: unknown, failures: number) => void;
}

export class Leases {
  private readonly byMacStmt;
  private readonly byIpStmt;
  private readonly upsertTx;
  private readonly releaseStmt;
  private readonly flushTx;
  /**
   * Staged (write-behind) leases and the records they delete (rec null), by
   * MAC and by address, tagged with their batch: what reads see until the
   * batch is stored.
   */
  private readonly overMac = new Map<string, Staged>();
  private readonly overIp = new Map<string, Staged>();
  private staged: LeaseRecord[] = [];
  private batch = 1;
  /**
   * Set when the file is in WAL mode with synchronous=FULL: the group commit
   * then commits with NORMAL and makes the batch durable off the event loop.
   */
  private readonly walSync: WalSync | undefined;
  /** Background fsyncs (flush with waitForDisk false) that failed. */
  syncErrors = 0;

  constructor(private readonly db: Db) {
    this.byMacStmt = db.prepare<[string], Row>('SELECT * FROM leases WHERE mac = ?');
    this.byIpStmt = db.prepare<[string], Row>('SELECT * FROM leases WHERE ipv4 = ?');
    const del = db.prepare('DELETE FROM leases WHERE ipv4 = ? AND mac != ?');
    const ins = db.prepare(`INSERT INTO leases (mac, ipv4, hostname, state, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(mac) DO UPDATE SET ipv4 = excluded.ipv4, hostname = excluded.hostname, state = excluded.state,
        expires_at = excluded.expires_at, updated_at = excluded.updated_at`);
    // One address, one holder: a new binding replaces whatever stale record held the address.
    const write = (l: LeaseRecord, at: number) => {
      del.run(l.ipv4, l.mac);
      ins.run(l.mac, l.ipv4, l.hostname, l.state, l.expiresAt, at);
    };
    this.upsertTx = db.transaction((l: LeaseRecord) => write(l, Date.now()));
    // Prepared once: a RELEASE is a packet, and preparing costs more than the update.
    this.releaseStmt = db.prepare<[number, number, string]>("UPDATE leases SET state = 'released', expires_at = ?, updated_at = ? WHERE mac = ?");
    this.flushTx = db.transaction((leases: LeaseRecord[], also?: () => void) => {
      also?.();
      const at = Date.now();
      for (const l of leases) write(l, at);
    });
    const wal = durableWalPath(db);
    this.walSync = wal ? new WalSync(wal) : undefined;
  }

  byMac(mac: string): LeaseRecord | undefined {
    const o = this.overMac.get(mac);
    if (o) return o.rec ? { ...o.rec } : undefined;
    const r = this.byMacStmt.get(mac);
    if (!r) return undefined;
    // A staged lease of another MAC takes this address: storing it deletes this record.
    const holder = this.overIp.size > 0 ? this.overIp.get(r.ipv4) : undefined;
    if (holder?.rec && holder.rec.mac !== r.mac) return undefined;
    return toLease(r);
  }

  byIp(ipv4: string): LeaseRecord | undefined {
    const o = this.overIp.get(ipv4);
    if (o?.rec) return { ...o.rec };
    const r = this.byIpStmt.get(ipv4);
    if (!r) return undefined;
    // This MAC's staged lease is elsewhere (or its record goes): storing it moves the record off this address.
    const mine = this.overMac.size > 0 ? this.overMac.get(r.mac) : undefined;
    if (mine && (!mine.rec || mine.rec.ipv4 !== ipv4)) return undefined;
    return toLease(r);
  }

  /** Insert or replace this MAC's lease now, durable when it returns. */
  upsert(lease: LeaseRecord): void {
    this.writePending();
    this.upsertTx.immediate(lease);
  }

  /**
   * Stage a lease: every read sees it at once; it is stored by the next
   * flush() (the DHCP server's group commit, which sends the ACK only after).
   */
  stage(lease: LeaseRecord): void {
    const rec = { ...lease };
    const entry: Staged = { rec, batch: this.batch };
    const holder = this.overIp.get(rec.ipv4);
    if (holder?.rec && holder.rec.mac !== rec.mac) this.overMac.set(holder.rec.mac, { rec: null, batch: this.batch });
    const prev = this.overMac.get(rec.mac);
    if (prev?.rec && prev.rec.ipv4 !== rec.ipv4 && this.overIp.get(prev.rec.ipv4) === prev) this.overIp.delete(prev.rec.ipv4);
    this.overMac.set(rec.mac, entry);
    this.overIp.set(rec.ipv4, entry);
    this.staged.push(rec);
  }

  /** Leases staged and not stored yet (this batch and those being written). */
  pendingCount(): number {
    return this.overMac.size;
  }

  /** Take the staged leases to store: call batchDone(id) once they are stored (or failed). */
  private takeBatch(): { id: number; leases: LeaseRecord[] } | undefined {
    if (this.staged.length === 0) return undefined;
    const out = { id: this.batch++, leases: this.staged };
    this.staged = [];
    return out;
  }

  /** The batch is stored (reads now find it in the table) or lost: its staged entries go. */
  private batchDone(id: number): void {
    for (const [k, e] of this.overMac) if (e.batch === id) this.overMac.delete(k);
    for (const [k, e] of this.overIp) if (e.batch === id) this.overIp.delete(k);
  }

  /**
   * Store every staged lease in one transaction, with `also` (more writes of
   * the same connection) in it. When it throws, nothing staged was stored
   * and the staged leases are dropped: no ACK may claim them.
   *
   * On a durable WAL file the transaction is committed without an fsync and
   * the promise returned settles once the WAL is on disk (wal-sync.ts): send
   * the ACKs then, not before. A rejected promise means the leases are in
   * the table but maybe not on disk: withhold the ACKs; the clients ask
   * again and the next flush covers them. Otherwise (a file in memory, or
   * not FULL) the commit is as durable as it gets when this returns.
   *
   * `waitForDisk: false` (config dhcp.ackAfterFsync: false): the fsync is
   * started and not waited for, so the ACKs go out once the batch is in the
   * WAL. A crash of the daemon loses nothing; a power loss can lose the
   * batches of the fsync under way. A failed background fsync is counted
   * (syncErrors) and told to `onSyncError` with the count; the next flush's fsync covers the
   * batch again.
   */
  flush(also?: () => void, opts: FlushOptions = {}): void | Promise<void> {
    // An earlier write (from upsert, release, decline) lost staged leases: whoever holds ACKs for them hears it here.
    const lost = this.failed;
    this.failed = undefined;
    let wrote = false;
    try {
      wrote = this.writePending(also, this.walSync !== undefined);
    } finally {
      this.failed = undefined;
    }
    if (lost) throw lost;
    if (!wrote || !this.walSync) return undefined;
    const synced = this.walSync.sync();
    if (opts.waitForDisk ?? true) return synced;
    synced.catch((err: unknown) => opts.onSyncError?.(err, ++this.syncErrors));
    return undefined;
  }

  /** Drop the WAL descriptor of the group commit (the inventory is closing). */
  close(): void {
    void this.walSync?.close();
  }

  private failed: unknown;

  /** Store what is staged (and `also`); true when a transaction was committed. */
  private writePending(also?: () => void, noSync = false): boolean {
    const b = this.takeBatch();
    if (!b && !also) return false;
    try {
      const commit = () => this.flushTx.immediate(b?.leases ?? [], also);
      if (noSync) withoutFsync(this.db, commit);
      else commit();
      return true;
    } catch (err) {
      if (b) this.failed ??= err;
      throw err;
    } finally {
      if (b) this.batchDone(b.id);
    }
  }

  release(mac: string): void {
    this.writePending();
    const now = Date.now();
    this.releaseStmt.run(now, now, mac);
  }

  /** The address is recorded under the decliner's MAC in state `declined` so the pool skips it until `until`. */
  decline(ipv4: string, mac: string, until: number): void {
    this.writePending();
    this.upsertTx.immediate({ mac, ipv4, hostname: null, state: 'declined', expiresAt: until });
  }

  list(): LeaseRecord[] {
    return (this.db.prepare('SELECT * FROM leases ORDER BY ipv4').all() as Row[]).map(toLease);
  }

  activeCount(now = Date.now()): number {
    return (this.db.prepare("SELECT count(*) AS n FROM leases WHERE state = 'bound' AND expires_at > ?").get(now) as { n: number }).n;
  }
}
