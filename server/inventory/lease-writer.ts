/**
 * Group commit on a thread of its own. The DHCP server sends an ACK only once its lease is
 * durable; committing on the main thread (synchronous=FULL: an fsync, and now and then a WAL
 * checkpoint) stopped every other packet for as long, which is what the DHCP p99 measured
 * (issue 6). Here the main thread stages leases as before and hands each turn's batch to
 * lease-writer-worker.ts; DISCOVERs and OFFERs go on while the disk works.
 *
 * At most one batch is being written: what is handed over meanwhile waits and goes as one
 * transaction once that one is stored, so a slow disk makes batches bigger, not a queue longer.
 * Batches are stored in the order they were handed over.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { LeaseRecord } from './leases.js';
import type { SightingParams } from './discovered.js';

export interface WriteBatch { id: number; leases: LeaseRecord[]; sightings: SightingParams[] }
export type WriteReply = { id: number; ok: true } | { id: number; ok: false; error: string };

interface Waiter { resolve: () => void; reject: (err: Error) => void }
interface Pending { leases: LeaseRecord[]; sightings: SightingParams[]; waiters: Waiter[] }

/** The worker's compiled file: next to this one in dist/, or dist/'s copy when this runs from the sources (vitest). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here.replace(/lease-writer\.js$/, 'lease-writer-worker.js');
  return here.replace(/\/server\/inventory\/lease-writer\.ts$/, '/dist/server/inventory/lease-writer-worker.js');
}

export class LeaseWriter {
  private worker: Worker | undefined;
  private writing: { id: number; waiters: Waiter[] } | undefined;
  private next: Pending | undefined;
  private ids = 1;
  /** Transactions committed by the thread (for tests and the bench). */
  commits = 0;

  constructor(private readonly file: string) {}

  /** Store these in one transaction after everything handed over before; settles once stored or not. */
  write(leases: LeaseRecord[], sightings: SightingParams[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const p = (this.next ??= { leases: [], sightings: [], waiters: [] });
      for (const l of leases) p.leases.push(l);
      for (const s of sightings) p.sightings.push(s);
      p.waiters.push({ resolve, reject });
      if (!this.writing) this.sendNext();
    });
  }

  /** Whether a batch is being written or waits (the server's close waits for them through write()'s promises). */
  busy(): boolean {
    return this.writing !== undefined || this.next !== undefined;
  }

  /** Stop the thread once what was handed over is written (an empty batch after it tells when). */
  async close(): Promise<void> {
    if (this.busy()) await this.write([], []).catch(() => { /* its own callers heard of it */ });
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.postMessage('close');
    });
  }

  private sendNext(): void {
    const p = this.next;
    if (!p) return;
    this.next = undefined;
    const id = this.ids++;
    this.writing = { id, waiters: p.waiters };
    const batch: WriteBatch = { id, leases: p.leases, sightings: p.sightings };
    this.thread().postMessage(batch);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerFile(), { workerData: { file: this.file } });
    // An idle writer must not keep the process alive; a write in flight is awaited by its caller.
    w.unref();
    w.on('message', (r: WriteReply) => this.settled(r));
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`lease writer thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  private settled(r: WriteReply): void {
    const cur = this.writing;
    if (!cur || cur.id !== r.id) return;
    this.writing = undefined;
    if (r.ok) {
      this.commits++;
      for (const w of cur.waiters) w.resolve();
    } else {
      const err = new Error(`lease write failed: ${r.error}`);
      for (const w of cur.waiters) w.reject(err);
    }
    this.sendNext();
  }

  /** The thread died (it should not): what it was writing is not known to be stored. A new one starts on the next write. */
  private lost(w: Worker, err: Error): void {
    if (this.worker === w) this.worker = undefined;
    const cur = this.writing;
    this.writing = undefined;
    for (const x of cur?.waiters ?? []) x.reject(err);
    if (this.next) this.sendNext();
  }
}
