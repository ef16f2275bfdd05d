/**
 * For nfs-exports.test.ts, run by it under `unshare -m` with tmpfs over /etc/exports.d and
 * /var/lib/nfs: the kernel backend applies one export to <dir>/root-a, then one to a missing
 * path (which must fail); prints what exportfs reported, as JSON.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { kernelBackend } from '../../server/nfs/backends.js';
import { renderKernelExports } from '../../server/nfs/render.js';
import { run } from '../../server/run.js';

const dir = process.argv[2]!;
const file = '/etc/exports.d/sidereal.exports';
const backend = kernelBackend(file);
const a = path.join(dir, 'root-a');
await backend.apply(renderKernelExports([{
  path: a, root: 'a', live: true, bootedBy: [],
  clients: [{ match: '10.77.0.10/32', access: 'rw' }, { match: '10.77.0.0/24', access: 'ro' }],
}]), [a]);
const text = readFileSync(file, 'utf8');
const exportfs = (await run(['exportfs', '-v'])).stdout;
let missingError = '';
const gone = path.join(dir, 'no-such-dir');
try {
  await backend.apply(renderKernelExports([{ path: gone, root: 'b', live: true, bootedBy: [], clients: [{ match: '10.77.0.0/24', access: 'ro' }] }]), [gone]);
} catch (e) {
  missingError = (e as Error).message;
}
process.stdout.write(JSON.stringify({ file: text, exportfs, missingError }));
