/** The audit log: every write to the inventory, by whom, with the record before and after. */
import type { Db } from './db.js';

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

interface Row { id: number; at: number; actor: string; action: string; target: string; before: string | null; after: string | null }

export class Audit {
  private readonly insert;
  constructor(private readonly db: Db) {
    this.insert = db.prepare('INSERT INTO audit_log (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Call inside the write's own transaction so the change and its record land together. */
  record(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    this.insert.run(Date.now(), actor, action, target,
      before === undefined || before === null ? null : JSON.stringify(before),
      after === undefined || after === null ? null : JSON.stringify(after));
  }

  list(opts: { limit: number; beforeId?: number; target?: string }): AuditEntry[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (opts.beforeId !== undefined) { where.push('id < ?'); args.push(opts.beforeId); }
    if (opts.target) { where.push('target = ?'); args.push(opts.target); }
    const rows = this.db.prepare(`SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, opts.limit) as Row[];
    return rows.map((r) => ({ ...r, before: r.before ? JSON.parse(r.before) : null, after: r.after ? JSON.parse(r.after) : null }));
  }
}
