/**
 * The lease writer thread (see lease-writer.ts): its own connection to the inventory file, one
 * IMMEDIATE transaction per batch it is sent, committed with synchronous=FULL (the fsync and any
 * WAL checkpoint happen here, not on the thread that answers DHCP), then a reply naming the batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from './db.js';
import { leaseWriteStatement } from './leases.js';
import { RECORD_SIGHTING_SQL, type SightingParams } from './discovered.js';
import type { WriteBatch, WriteReply } from './lease-writer.js';

const port = parentPort;
if (!port) throw new Error('lease-writer-worker runs as a worker thread');

const { file } = workerData as { file: string };
const db = openDb(file, { migrate: false });
const writeLease = leaseWriteStatement(db);
const recordSighting = db.prepare<[SightingParams]>(RECORD_SIGHTING_SQL);
const store = db.transaction((b: WriteBatch) => {
  // Sightings first, as the main thread's flush does: a lease never waits behind a failed sighting
  // for long, and both land or neither.
  for (const s of b.sightings) recordSighting.run(s);
  const at = Date.now();
  for (const l of b.leases) writeLease(l, at);
});

port.on('message', (m: WriteBatch | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  let reply: WriteReply;
  try {
    store.immediate(m);
    reply = { id: m.id, ok: true };
  } catch (err) {
    reply = { id: m.id, ok: false, error: (err as Error).message };
  }
  port.postMessage(reply);
});
