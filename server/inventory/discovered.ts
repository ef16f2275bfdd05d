/** Unknown MACs that asked for DHCP: recorded so an admin can see and adopt them. */
import type { Db } from './db.js';

export interface Discovered {
  mac: string;
  firstSeen: number;
  lastSeen: number;
  seenCount: number;
  archCode: number | null;
  vendorClass: string | null;
  userClass: string | null;
  hostname: string | null;
}

export interface Sighting { mac: string; archCode?: number; vendorClass?: string; userClass?: string; hostname?: string }

interface Row { mac: string; first_seen: number; last_seen: number; seen_count: number; arch_code: number | null; vendor_class: string | null; user_class: string | null; hostname: string | null }
const toDiscovered = (r: Row): Discovered => ({
  mac: r.mac, firstSeen: r.first_seen, lastSeen: r.last_seen, seenCount: r.seen_count, archCode: r.arch_code,
  vendorClass: r.vendor_class, userClass: r.user_class, hostname: r.hostname,
});

export class DiscoveredMachines {
  private readonly upsert;
  constructor(private readonly db: Db) {
    // COALESCE keeps what an earlier stage told us: syslinux.efi and dracut send no option 93 or 60.
    this.upsert = db.prepare(`INSERT INTO discovered (mac, first_seen, last_seen, seen_count, arch_code, vendor_class, user_class, hostname)
      VALUES (@mac, @now, @now, @count, @archCode, @vendorClass, @userClass, @hostname)
      ON CONFLICT(mac) DO UPDATE SET last_seen = @now, seen_count = seen_count + @count,
        arch_code = COALESCE(@archCode, arch_code), vendor_class = COALESCE(@vendorClass, vendor_class),
        user_class = COALESCE(@userClass, user_class), hostname = COALESCE(@hostname, hostname)`);
  }

  /** `count` packets seen since the last record (the DHCP side batches sightings). */
  record(s: Sighting, count = 1, now = Date.now()): void {
    this.upsert.run({
      mac: s.mac, now, count, archCode: s.archCode ?? null, vendorClass: s.vendorClass ?? null,
      userClass: s.userClass ?? null, hostname: s.hostname ?? null,
    });
  }

  get(mac: string): Discovered | undefined {
    const r = this.db.prepare<[string], Row>('SELECT * FROM discovered WHERE mac = ?').get(mac);
    return r ? toDiscovered(r) : undefined;
  }

  /** Discovered MACs not registered since. */
  list(): Discovered[] {
    return (this.db.prepare('SELECT * FROM discovered WHERE mac NOT IN (SELECT mac FROM machines) ORDER BY last_seen DESC').all() as Row[]).map(toDiscovered);
  }

  remove(mac: string): void {
    this.db.prepare('DELETE FROM discovered WHERE mac = ?').run(mac);
  }
}
