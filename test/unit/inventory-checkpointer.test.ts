/**
 * WAL checkpoints on a worker thread (server/inventory/checkpointer.ts): the
 * event loop's connection commits, the worker copies the WAL into the
 * database file and fsyncs, and SQLite's own checkpoints come back if the
 * worker fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/inventory/db.js';
import { BACKSTOP_AUTOCHECKPOINT, BackgroundCheckpointer } from '../../server/inventory/checkpointer.js';

const dirs: string[] = [];
const open: Array<{ db: Db; ckpt?: BackgroundCheckpointer }> = [];

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.ckpt?.close();
    if (o.db.open) o.db.close();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fileDb(): { db: Db; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sidereal-ckpt-'));
  dirs.push(dir);
  const file = join(dir, 'x.sqlite');
  const db = openDb(file, { migrate: false });
  db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b BLOB)');
  open.push({ db });
  return { db, file };
}

const autocheckpoint = (db: Db) => db.pragma('wal_autocheckpoint', { simple: true });

/** `pages` rows of about a page each, in one transaction: about that many WAL frames. */
function writePages(db: Db, pages: number): void {
  const ins = db.prepare('INSERT INTO t (b) VALUES (randomblob(3500))');
  db.transaction(() => { for (let i = 0; i < pages; i++) ins.run(); })();
}

describe('BackgroundCheckpointer', () => {
  it('copies the WAL into the database file from its thread once 1000 frames wait; the main connection only keeps a backstop', async () => {
    const { db, file } = fileDb();
    const ckpt = new BackgroundCheckpointer(db, { pollMs: 10 });
    open.at(-1)!.ckpt = ckpt;
    expect(autocheckpoint(db)).toBe(BACKSTOP_AUTOCHECKPOINT);
    const before = statSync(file).size;
    writePages(db, 300);
    // Under the threshold, and younger than maxAgeMs (5 s): nothing yet.
    await new Promise((r) => setTimeout(r, 200));
    expect(ckpt.checkpoints).toBe(0);
    writePages(db, 900);
    await expect.poll(() => ckpt.checkpoints, { timeout: 5000 }).toBe(1);
    expect(ckpt.copied).toBeGreaterThanOrEqual(1000);
    // The pages are in the database file itself now, not only in the WAL.
    expect(statSync(file).size).toBeGreaterThan(before + 1000 * 3500);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(1200);
  });

  it('copies a few frames once they have waited maxAgeMs, so a quiet WAL starts over', async () => {
    const { db } = fileDb();
    const ckpt = new BackgroundCheckpointer(db, { pollMs: 10, maxAgeMs: 300 });
    open.at(-1)!.ckpt = ckpt;
    writePages(db, 3);
    await expect.poll(() => ckpt.checkpoints, { timeout: 5000 }).toBe(1);
    expect(ckpt.copied).toBeGreaterThanOrEqual(3);
    // Nothing new: no checkpoint for nothing.
    await new Promise((r) => setTimeout(r, 600));
    expect(ckpt.checkpoints).toBe(1);
  });

  it('when the worker fails, puts SQLite\'s own checkpoints back and says so', async () => {
    const { db, file } = fileDb();
    // The worker opens the file by name: gone from under it, it cannot start.
    renameSync(file, `${file}.moved`);
    const errors: Array<{ message: string; fatal: boolean }> = [];
    const ckpt = new BackgroundCheckpointer(db, { onError: (err, fatal) => errors.push({ message: err.message, fatal }) });
    open.at(-1)!.ckpt = ckpt;
    await expect.poll(() => errors.length, { timeout: 5000 }).toBe(1);
    expect(errors[0]).toMatchObject({ fatal: true, message: expect.stringMatching(/unable to open|does not exist|no such file/i) });
    expect(autocheckpoint(db)).toBe(1000);
    await ckpt.close();
    // The main connection goes on as before.
    writePages(db, 2);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(2);
  });

  it('closes its connection before the main one, so the last close removes the WAL', async () => {
    const { db, file } = fileDb();
    const ckpt = new BackgroundCheckpointer(db, { pollMs: 10 });
    writePages(db, 10);
    await ckpt.close();
    await ckpt.close();
    db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a database in memory and bad options, naming them', () => {
    const mem = openDb(':memory:', { migrate: false });
    expect(() => new BackgroundCheckpointer(mem)).toThrow(/need a database file/);
    mem.close();
    const { db } = fileDb();
    expect(() => new BackgroundCheckpointer(db, { pollMs: 0 })).toThrow(/pollMs must be a whole number >= 1, got 0/);
    expect(() => new BackgroundCheckpointer(db, { frames: 1.5 })).toThrow(/frames must be a whole number >= 1, got 1.5/);
    expect(autocheckpoint(db)).toBe(1000);
  });
});
