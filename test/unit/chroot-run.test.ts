import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { alive } from '../helpers/procs.js';
import { run, RunError } from '../../server/run.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}


describe('run(): the one logged wrapper for external commands', () => {
  it('returns output and exit code, logs one line {cmd, args, exitCode, ms}', async () => {
    const { logger, lines } = capture();
    const r = await run(['sh', '-c', 'echo out; echo err >&2'], { logger });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'out', stderr: 'err' });
    expect(r.ms).toBeGreaterThanOrEqual(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2'], exitCode: 0 });
    expect(typeof lines[0]!.ms).toBe('number');
  });

  it('streams lines to onLine, tagged by stream', async () => {
    const got: Array<[string, string]> = [];
    await run(['sh', '-c', 'echo a; echo b >&2; printf "c\\nd"'], { logger: capture().logger, onLine: (l, s) => got.push([l, s]) });
    expect(got).toEqual(expect.arrayContaining([['a', 'stdout'], ['b', 'stderr'], ['c', 'stdout'], ['d', 'stdout']]));
    expect(got).toHaveLength(4);
  });

  it('rejects on a non-zero exit unless reject: false; stdin is /dev/null unless input', async () => {
    const { logger, lines } = capture();
    await expect(run(['sh', '-c', 'echo boom >&2; exit 3'], { logger })).rejects.toMatchObject({ name: 'RunError', exitCode: 3, message: expect.stringContaining('boom') });
    expect((await run(['false'], { logger, reject: false })).exitCode).toBe(1);
    expect((await run(['cat'], { logger })).stdout).toBe('');
    expect((await run(['cat'], { logger, input: 'hello\n' })).stdout).toBe('hello');
    expect(lines.map((l) => l.exitCode)).toEqual([3, 1, 0, 0]);
  });

  it('a missing binary rejects even with reject: false', async () => {
    await expect(run(['/nonexistent/sidereal-nope'], { logger: capture().logger, reject: false })).rejects.toBeInstanceOf(RunError);
  });

  it('abort kills the whole process group (grandchildren too) and rejects', async () => {
    const ac = new AbortController();
    let grandchild = 0;
    const p = run(['sh', '-c', 'sleep 30 & echo $!; wait'], {
      logger: capture().logger,
      signal: ac.signal,
      killGraceMs: 1000,
      onLine: (l) => { grandchild = Number(l); ac.abort(); },
    });
    const t0 = Date.now();
    await expect(p).rejects.toMatchObject({ aborted: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(grandchild).toBeGreaterThan(1);
    expect(alive(grandchild)).toBe(false);
  });

  it('timeoutMs kills and rejects with timedOut', async () => {
    await expect(run(['sleep', '30'], { logger: capture().logger, timeoutMs: 200 })).rejects.toMatchObject({ timedOut: true });
  });

  it('what a command leaves running in its group is stopped when it exits', async () => {
    const { logger, lines } = capture();
    const t0 = Date.now();
    const r = await run(['sh', '-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { logger, killGraceMs: 1000 });
    const pid = Number(r.stdout);
    expect(pid).toBeGreaterThan(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(alive(pid)).toBe(false);
    expect(lines.some((l) => l.level === 40)).toBe(true);
  });

  it('an already aborted signal never starts the command', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(run(['true'], { logger: capture().logger, signal: ac.signal })).rejects.toMatchObject({ aborted: true });
  });
});
