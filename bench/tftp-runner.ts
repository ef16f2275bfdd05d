/**
 * Runs Sidereal's TFTP server for bench/tftp.ts, inside the namespace the
 * bench made (started with `ip netns exec`). Serves a directory, prints
 * `READY <port>` once listening, stops cleanly on SIGTERM/SIGINT.
 *
 *   node dist/bench/tftp-runner.js --root DIR --address 127.0.0.1 --port 6969 [--threads N]
 */
import { parseArgs } from 'node:util';
import { destination, pino } from 'pino';
import { resolveStatic } from '../server/tftp/files.js';
import { startTftpServer } from '../server/tftp/server.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    address: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '6969' },
    'max-blksize': { type: 'string' },
    'max-windowsize': { type: 'string' },
    threads: { type: 'string' },
  },
});
if (!values.root) {
  process.stderr.write('usage: tftp-runner --root DIR [--address A] [--port P]\n');
  process.exit(2);
}
const root = values.root;
// Transfer lines go to stderr (the bench keeps stdout for READY).
const logger = pino({ level: process.env.SIDEREAL_LOG_LEVEL ?? 'info', base: { svc: 'tftp' } }, destination(2));
const opts: Parameters<typeof startTftpServer>[0] = {
  address: values.address!,
  port: Number(values.port),
  logger,
  resolve: (p) => resolveStatic(root, p),
  // Every simulated client runs in the bench's one client namespace, so they share one
  // address: the per-client cap (8, for real nodes) would refuse the 20- and 100-client storms.
  maxSessionsPerClient: 1000,
};
if (values['max-blksize']) opts.maxBlksize = Number(values['max-blksize']);
if (values['max-windowsize']) opts.maxWindowsize = Number(values['max-windowsize']);
if (values.threads) opts.threads = Number(values.threads);
const server = await startTftpServer(opts);
process.stdout.write(`READY ${server.port}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
