/**
 * WAL checkpoints off the event loop, for the daemon's connection.
 *
 * SQLite checkpoints on the connection that commits past `wal_autocheckpoint`
 * pages: the commit then copies the WAL into the database and fsyncs both, on
 * the calling thread. In the daemon that is the event loop, so every few
 * hundred lease commits one OFFER, one ACK and one TFTP request wait 2-5 ms
 * for the disk, and 100+ ms when the disk stalls (bench/dhcp.ts, 2026-12-08:
 * one commit took 155 ms, and the OFFER p99 of that run was 145 ms; OFFERs
 * never wait for a disk otherwise).
 *
 * So a worker thread with its own connection to the same file runs a PASSIVE
 * checkpoint when SQLite would (1000 frames not yet copied, read from the
 * wal-index header), or when frames have waited `maxAgeMs`: it copies and
 * fsyncs while the event loop goes on committing (a passive checkpoint never
 * blocks a writer). The main connection keeps a far higher
 * `wal_autocheckpoint` as a backstop: under a load that never pauses, the
 * worker's checkpoint rarely catches the last frame, and the WAL can only
 * start over from its beginning after one that did; the main connection's
 * rare own checkpoint then finds almost everything copied already. If the
 * worker fails, SQLite's default is put back.
 *
 * Measured (bench/inventory.ts, 10,000 machines, 3 pairs of 3 runs, each
 * pair back to back): OFFER p99 2.2, 2.4 and 2.7 ms against 5.7, 5.4 and 3.9 ms
 * with the checkpoints on the event loop. The ACK p99 follows the WAL's
 * fsync either way.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Db } from './db.js';

/** SQLite's own default, put back when the worker fails. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;
/** After a failed checkpoint, the next one is tried this much later. */
export const RETRY_MS = 1000;
/** The backstop on the main connection while the worker runs: 40 MiB of WAL at 4 KiB pages. */
export const BACKSTOP_AUTOCHECKPOINT = 10_000;

/**
 * The worker, as a CommonJS script (eval): a file would need its own build
 * path under vitest and under dist/. It loads better-sqlite3 from the path the
 * main thread resolved.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.sqlite);
let db, checkpoint;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  // The checkpoint fsyncs the WAL before copying and the database after: FULL, whatever the default.
  db.pragma('synchronous = FULL');
  checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
} catch (err) {
  // Said here: an error thrown out of a worker reaches the main thread without its message.
  parentPort.postMessage({ fatal: String((err && err.message) || err) });
  process.exit(1);
}
// The wal-index header (sqlite.org/walformat.html): two copies of mxFrame, the last frame
// committed, at bytes 16 and 64; nBackfill, the last frame checkpointed, at byte 96.
const header = Buffer.alloc(100);
let shm;
function pendingFrames() {
  try {
    shm ??= fs.openSync(workerData.file + '-shm', 'r');
    if (fs.readSync(shm, header, 0, 100, 0) < 100) return undefined;
  } catch {
    return undefined;
  }
  const mx = header.readUInt32LE(16);
  // Read while a writer changed it: ask again next time.
  if (mx !== header.readUInt32LE(64)) return 0;
  const backfilled = header.readUInt32LE(96);
  return mx > backfilled ? mx - backfilled : 0;
}
let lastRun = Date.now();
let retryAt = 0;
// As SQLite would at its wal_autocheckpoint, or the rest once a while has passed (in quiet
// time, so the WAL starts over from its beginning); when the header cannot be read, by time.
function due(pending, now) {
  if (pending === 0 || now < retryAt) return false;
  return (pending ?? 0) >= workerData.frames || now - lastRun >= workerData.maxAgeMs;
}
const timer = setInterval(() => {
  const now = Date.now();
  if (!due(pendingFrames(), now)) return;
  lastRun = now;
  try {
    const r = checkpoint.get();
    parentPort.postMessage({ copied: r.checkpointed });
  } catch (err) {
    // A disk that fails is not asked again at every poll.
    retryAt = now + workerData.retryMs;
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
}, workerData.pollMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  if (shm !== undefined) fs.closeSync(shm);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  /** How often the worker looks at the WAL's length (a 100-byte read). */
  pollMs?: number;
  /** Checkpoint once this many frames wait to be copied (SQLite's own default threshold). */
  frames?: number;
  /** Or once any frame has waited this long. */
  maxAgeMs?: number;
  /**
   * A checkpoint failed (`failures` so far, to log the first and then a few), or the worker
   * did (`fatal`: it is gone and the main connection checkpoints by itself again).
   */
  onError?: (err: Error, fatal: boolean, failures: number) => void;
}

export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopped = false;
  /** Checkpoints run (for tests and logs), and the WAL frames the last one had copied in all. */
  checkpoints = 0;
  copied = 0;
  /** Checkpoints that failed. */
  failures = 0;

  private readonly onError: CheckpointerOptions['onError'];

  constructor(private readonly db: Db, opts: CheckpointerOptions = {}) {
    this.onError = opts.onError;
    if (db.memory) throw new Error('background checkpoints need a database file, not one in memory');
    const pollMs = opts.pollMs ?? 50;
    const frames = opts.frames ?? SQLITE_DEFAULT_AUTOCHECKPOINT;
    const maxAgeMs = opts.maxAgeMs ?? 5000;
    for (const [name, v] of Object.entries({ pollMs, frames, maxAgeMs })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number >= 1, got ${v}`);
    }
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT}`);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file: db.name, pollMs, frames, maxAgeMs, retryMs: RETRY_MS, sqlite } });
    // Never what keeps the process alive.
    this.worker.unref();
    this.worker.on('message', (m: { copied?: number; error?: string; fatal?: string }) => {
      if (m.fatal !== undefined) this.fail(new Error(`WAL checkpoint thread: ${m.fatal}`));
      else if (m.error !== undefined) this.onError?.(new Error(`WAL checkpoint: ${m.error}`), false, ++this.failures);
      else {
        this.checkpoints++;
        this.copied = m.copied ?? 0;
      }
    });
    this.worker.on('error', (err: unknown) => {
      // What the worker threw comes across cloned, maybe without its message (SqliteError).
      const e = err as { message?: unknown; code?: unknown } | null;
      this.fail(new Error(`WAL checkpoint thread: ${typeof e?.message === 'string' ? e.message : String(e?.code ?? err)}`));
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      if (!this.stopped) this.fallBack();
      resolve();
    }));
  }

  private fail(err: Error): void {
    this.fallBack();
    this.onError?.(err, true, ++this.failures);
  }

  /** The worker is gone: the main connection checkpoints by itself again. */
  private fallBack(): void {
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
  }

  /** Stop the worker and close its connection; resolves once it has exited. Call before closing `db`. */
  async close(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      // Unref'd, it would let a process with nothing else left exit before the inventory closes.
      this.worker.ref();
      this.worker.postMessage('stop');
    }
    await this.exited;
  }
}
