/**
 * Durability of the DHCP group commit without blocking the event loop.
 *
 * A commit with synchronous=FULL fsyncs the WAL on the calling thread: ~0.25 ms
 * here, on every ACK at 1000 exchanges/s, a quarter of the loop spent waiting
 * on the disk while DISCOVERs queue behind it. Instead the lease batch is
 * committed with synchronous=NORMAL (its frames are written to the WAL, safe
 * from a process crash at once), and then the WAL file is fdatasync'd on
 * libuv's thread pool; the ACKs go out when that returns. fsync is per file,
 * not per descriptor, so our own descriptor of `<db>-wal` flushes the frames
 * SQLite wrote through its own.
 *
 * One fdatasync is in flight at a time. A commit made while one runs may not
 * be covered by it, so its caller waits for the next one, which then covers
 * every commit made meanwhile (the group commit grows under load by itself).
 *
 * The WAL file keeps its inode while this process holds a connection: SQLite
 * deletes it only when the last connection closes, and a checkpoint restarts
 * or truncates it in place. A checkpoint syncs the WAL before copying it into
 * the database and syncs the database after, so frames checkpointed before
 * our fdatasync are durable all the same.
 */
import fs from 'node:fs';

const fdatasync = (fd: number) => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
const open = (path: string) => new Promise<number>((resolve, reject) => fs.open(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));

interface Waiters { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void }

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

export class WalSync {
  private fd: number | undefined;
  private inFlight: Promise<void> | undefined;
  /** Callers whose commit came after the in-flight fdatasync started. */
  private next: Waiters | undefined;
  /** fdatasync calls made (for tests). */
  syncs = 0;

  constructor(readonly walPath: string) {}

  /** Resolves once every commit made before this call is on disk. */
  sync(): Promise<void> {
    if (!this.inFlight) return this.start();
    this.next ??= waiters();
    return this.next.promise;
  }

  private start(): Promise<void> {
    const p = this.flushOnce().finally(() => {
      this.inFlight = undefined;
      const n = this.next;
      this.next = undefined;
      if (n) this.start().then(n.resolve, n.reject);
    });
    this.inFlight = p;
    return p;
  }

  private async flushOnce(): Promise<void> {
    this.syncs++;
    // Opened on first use: the WAL file exists once the first commit has been made.
    this.fd ??= await open(this.walPath);
    try {
      await fdatasync(this.fd);
    } catch (err) {
      // A descriptor gone bad is dropped, so the next sync opens the file again.
      this.closeFd();
      throw err;
    }
  }

  private closeFd(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* already closed */ }
  }

  /** Wait for the syncs under way, then drop the descriptor (before the database closes). */
  async close(): Promise<void> {
    while (this.inFlight) await this.inFlight.catch(() => undefined);
    this.closeFd();
  }
}
