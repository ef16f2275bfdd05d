/**
 * Opens the inventory: one SQLite file in WAL mode with foreign keys on, and
 * the numbered migrations in `migrations/` applied in order, each in its own
 * transaction and recorded in `schema_migrations`, so a crash mid-migration
 * leaves the previous schema intact.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Db = Database.Database;

/** The repository's migrations folder, found from this file in server/ or dist/server/. */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'migrations');
    try {
      readdirSync(candidate);
      return candidate;
    } catch {
      dir = resolve(dir, '..');
    }
  }
  throw new Error('cannot find the migrations/ folder next to the sidereal sources');
}

export interface OpenOptions {
  /**
   * FULL (the default): a lease or a registration that was acknowledged
   * survives power loss. NORMAL: commits are not fsync'd; in WAL mode they
   * are still safe from a process crash, not from a power cut.
   */
  synchronous?: 'FULL' | 'NORMAL';
  migrate?: boolean;
}

const relaxed = new WeakMap<Db, { normal: Database.Statement; back: Database.Statement }>();

/**
 * Run `fn` (one transaction) committed without an fsync (synchronous=NORMAL),
 * on a connection opened FULL: for writes worth less than an fsync each, such
 * as boot events (0.25 ms against 0.03 ms a commit here), or made durable
 * another way (the DHCP group commit: inventory/wal-sync.ts). Inside an open
 * transaction `fn` just runs: the outer commit decides.
 *
 * These writes share the connection of every other write rather than
 * opening a second one: SQLite drops a connection's page cache when another
 * connection has committed, and boot events commit every few milliseconds
 * under a DHCP load, between the per-packet machine lookups.
 */
export function withoutFsync<T>(db: Db, fn: () => T): T {
  const sync = relaxed.get(db);
  if (!sync || db.inTransaction) return fn();
  sync.normal.run();
  try {
    return fn();
  } finally {
    sync.back.run();
  }
}

/**
 * The WAL file to fdatasync for a commit made through withoutFsync() to be as
 * durable as a FULL one; undefined when there is nothing to make durable (a
 * database in memory, or a connection opened NORMAL).
 */
export function durableWalPath(db: Db): string | undefined {
  return relaxed.has(db) && !db.memory ? `${db.name}-wal` : undefined;
}

export function openDb(file: string, opts: OpenOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const level = opts.synchronous ?? 'FULL';
  db.pragma(`synchronous = ${level}`);
  if (level === 'FULL') relaxed.set(db, { normal: db.prepare('PRAGMA synchronous = NORMAL'), back: db.prepare('PRAGMA synchronous = FULL') });
  db.pragma('foreign_keys = ON');
  // The CLI and the daemon write the same file; wait for each other instead of failing.
  db.pragma('busy_timeout = 5000');
  if (opts.migrate ?? true) migrate(db);
  return db;
}

export function migrate(db: Db, dir = migrationsDir()): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  const files = readdirSync(dir).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  const applied: number[] = [];
  for (const f of files) {
    const version = Number(f.slice(0, 3));
    if (done.has(version)) continue;
    const sql = readFileSync(join(dir, f), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(version, f, Date.now());
    }).immediate();
    applied.push(version);
  }
  return applied;
}
