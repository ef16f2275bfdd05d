/**
 * For the crash test: `node dist/test/helpers/chroot-runner.js ROOT` opens a
 * chroot session on ROOT and runs `sleep 30` inside; once the command runs it
 * prints {"ready":true,"pid":...}. The test then kill -9s this process in the
 * middle of the session, so the mounts stay behind.
 */
import { pino } from 'pino';
import { execInChroot, withChroot } from '../../server/roots/chroot.js';

async function main(): Promise<void> {
  const root = process.argv[2];
  if (!root) throw new Error('usage: chroot-runner.js ROOT');
  const logger = pino({ level: 'silent' });
  await withChroot(
    root,
    async (ctx) => {
      await execInChroot(ctx.rootDir, ['sh', '-c', 'echo ready; exec sleep 30'], {
        logger,
        signal: ctx.signal,
        onLine: (line) => {
          if (line === 'ready') process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
        },
      });
    },
    { logger },
  );
  process.stdout.write(`${JSON.stringify({ done: true })}\n`);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String((err as Error)?.stack ?? err) })}\n`);
  process.exit(1);
});
