/** Boot events: the timeline of each machine's boot (DHCP, each TFTP/HTTP file, kernel, root, booted). */
import type { Db } from './db.js';
import type { BootStage } from '../boot/types.js';

export interface BootEvent {
  mac: string;
  at: number;
  stage: BootStage;
  detail: Record<string, unknown>;
}

/** Boot events kept per MAC: enough for the last several boots, bounded so a flapping node cannot fill the disk. */
const KEEP_PER_MAC = 500;

export class Events {
  private readonly insert;
  private readonly trim;
  constructor(private readonly db: Db) {
    this.insert = db.prepare('INSERT INTO boot_events (mac, at, stage, detail) VALUES (?, ?, ?, ?)');
    this.trim = db.prepare(`DELETE FROM boot_events WHERE mac = ? AND id <= (
      SELECT id FROM boot_events WHERE mac = ? ORDER BY id DESC LIMIT 1 OFFSET ${KEEP_PER_MAC})`);
  }

  record(mac: string, stage: BootStage, detail: Record<string, unknown>, at = Date.now()): void {
    const r = this.insert.run(mac, at, stage, JSON.stringify(detail));
    if (Number(r.lastInsertRowid) % 100 === 0) this.trim.run(mac, mac);
  }

  list(mac: string, limit = 200): BootEvent[] {
    const rows = this.db.prepare<[string, number], { mac: string; at: number; stage: BootStage; detail: string }>(
      'SELECT mac, at, stage, detail FROM (SELECT * FROM boot_events WHERE mac = ? ORDER BY id DESC LIMIT ?) ORDER BY at, id').all(mac, limit);
    return rows.map((r) => ({ mac: r.mac, at: r.at, stage: r.stage, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }
}
