/**
 * The daemon's log destination holds lines in memory and writes them in
 * blocks (server/log.ts): a line must still come out within its flush
 * period when the daemon is quiet, and none may be lost at exit.
 */
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/serve.js';

const logJs = pathToFileURL(join(repoRoot, 'dist', 'server', 'log.js')).href;

/** A child process that logs through daemonLogDestination, then does `then`. */
function child(then: string) {
  const code = `
    const { createLogger, daemonLogDestination } = await import(${JSON.stringify(logJs)});
    const log = createLogger('info', daemonLogDestination());
    log.info({ mac: '52:54:00:00:00:01' }, 'one line');
    ${then}`;
  return execa(process.execPath, ['--input-type=module', '-e', code], { reject: false, timeout: 20_000 });
}

describe('daemon log destination', () => {
  it('a lone line is written within the flush period, not held until 4 KiB pile up', async () => {
    const p = child('setTimeout(() => {}, 3000);');
    const first = await new Promise<{ line: string; ms: number }>((resolve, reject) => {
      const t0 = Date.now();
      p.stdout!.once('data', (b: Buffer) => resolve({ line: b.toString(), ms: Date.now() - t0 }));
      setTimeout(() => reject(new Error('no line within 2 s')), 2000);
    });
    p.kill('SIGTERM');
    await p;
    expect(JSON.parse(first.line)).toMatchObject({ msg: 'one line', mac: '52:54:00:00:00:01' });
    expect(first.ms).toBeLessThan(1500);
  });

  it('what is held is written when the process exits, by process.exit or by an uncaught exception', async () => {
    for (const then of ['process.exit(3);', "throw new Error('boom');"]) {
      const r = await child(then);
      expect(r.exitCode).not.toBe(0);
      const lines = String(r.stdout).trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'one line' });
    }
  });

  it('thousands of lines arrive whole and in order', async () => {
    const r = await child("for (let i = 0; i < 5000; i++) log.info({ i }, 'n'); process.exit(0);");
    const lines = String(r.stdout).trim().split('\n').map((l) => JSON.parse(l) as { i?: number });
    expect(lines.slice(1).map((l) => l.i)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });
});
