/**
 * The one way Sidereal runs an external command (DEVELOPERS.md: every external
 * command goes through one logged wrapper).
 *
 * - one JSON log line per command: `{cmd, args, exitCode, ms}` (+ `signal`,
 *   `aborted`, `timedOut` when it applies);
 * - output streamed line by line to `onLine` (build logs, progress) and also
 *   returned whole;
 * - stdin is /dev/null unless `input` is given, so a prompt gets EOF instead of
 *   hanging a build;
 * - the child runs in its own process group: on abort or timeout the whole
 *   group gets SIGTERM, then SIGKILL after a grace delay; when the command
 *   exits, whatever it left running in its group (`daemon &`) is stopped too;
 *   and if this process exits while commands run, their groups are SIGKILLed.
 *   (A command that calls setsid() escapes its group: the chroot code also
 *   kills by root directory.)
 *
 * `stdio: 'inherit'` is for interactive use (`sidereal root shell`): the child
 * shares the terminal and our process group (job control needs that), nothing
 * is captured, and only the child itself is signalled.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execa, type ResultPromise } from 'execa';
import { destination, pino, type Logger } from 'pino';

export type RunStream = 'stdout' | 'stderr';

export interface RunOptions {
  /** Where the command's log line goes (default: see setDefaultRunLogger). */
  logger?: Logger;
  cwd?: string;
  /** Added to (overriding) this process's environment. */
  env?: Record<string, string | undefined>;
  /** false: the child gets `env` only, not this process's environment (default true). */
  extendEnv?: boolean;
  /** Written to stdin, then stdin is closed. Without it stdin is /dev/null. */
  input?: string | Uint8Array;
  /** Abort: SIGTERM to the process group, SIGKILL after `killGraceMs`; the call then rejects (aborted). */
  signal?: AbortSignal;
  /** Same as an abort after this many ms; the call rejects (timedOut). */
  timeoutMs?: number;
  /** Each output line (without its newline), as it arrives. */
  onLine?: (line: string, stream: RunStream) => void;
  /** Reject on a non-zero exit (default true). Abort, timeout, death by signal and spawn failures always reject. */
  reject?: boolean;
  /** 'pipe' (default): captured, own process group. 'inherit': the terminal (interactive). */
  stdio?: 'pipe' | 'inherit';
  /** Delay between SIGTERM and SIGKILL on abort/timeout (default 3000 ms). */
  killGraceMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export class RunError extends Error {
  override readonly name = 'RunError';
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly signal: string | undefined,
    readonly stdout: string,
    readonly stderr: string,
    readonly ms: number,
    readonly aborted: boolean,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

let defaultLogger: Logger | undefined;

/** The logger used when a call passes none (the daemon sets its own at start). Default: pino on stderr. */
export function setDefaultRunLogger(logger: Logger): void {
  defaultLogger = logger;
}

function getDefaultLogger(): Logger {
  defaultLogger ??= pino(
    { level: process.env.SIDEREAL_LOG_LEVEL ?? 'info', base: { svc: 'sidereal' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination({ fd: 2, sync: true }),
  );
  return defaultLogger;
}

/** Process groups (leader PIDs) of detached children still running. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: the last chance to not leave a child behind on process.exit() or an uncaught exception.
  process.on('exit', () => {
    for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
  });
}

/** Stop every command still running (each process group by its leader's PID): for a shutdown handler. */
export async function stopAllRunning(graceMs = 3000): Promise<void> {
  await Promise.all([...liveGroups].map((pgid) => stopGroup(pgid, graceMs)));
}

function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}

/**
 * Is any live (non-zombie) process left in the group? kill(-pgid, 0) also
 * succeeds for zombies, which an init that reaps lazily keeps around, so
 * when it does, /proc says whether a member is really running.
 */
function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      } catch {
        continue;
      }
      // After "(comm)": state ppid pgrp ...
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
    }
    return false;
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERM the group, wait up to graceMs for it to empty, then SIGKILL it (bounded; never throws). */
async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  if (!signalGroup(pgid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    if (!groupAlive(pgid)) return;
  }
  signalGroup(pgid, 'SIGKILL');
}

function lineTransform(stream: RunStream, onLine: (line: string, stream: RunStream) => void) {
  return function* (line: unknown): Generator<unknown, void, unknown> {
    try {
      onLine(String(line), stream);
    } catch {
      /* a faulty callback must not break the command */
    }
    yield line;
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}

/** Run `argv` (no shell). See the module comment for the contract. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run: empty argv');
  const logger = opts.logger ?? getDefaultLogger();
  const interactive = opts.stdio === 'inherit';
  const graceMs = opts.killGraceMs ?? 3000;
  const start = performance.now();
  const elapsed = () => Math.round((performance.now() - start) * 10) / 10;

  if (opts.signal?.aborted) {
    logger.info({ cmd, args, exitCode: null, ms: 0, aborted: true }, 'command not started: aborted');
    throw new RunError(`${cmd}: aborted before start`, argv, undefined, undefined, '', '', 0, true, false, { cause: opts.signal.reason });
  }

  let child: ResultPromise;
  try {
    child = execa(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      extendEnv: opts.extendEnv ?? true,
      reject: false,
      detached: !interactive,
      // execa's own cleanup only covers non-detached children; ours is the exit hook above.
      cleanup: interactive,
      ...(interactive
        ? { stdio: 'inherit' as const }
        : {
            ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
            stdout: opts.onLine ? lineTransform('stdout', opts.onLine) : ('pipe' as const),
            stderr: opts.onLine ? lineTransform('stderr', opts.onLine) : ('pipe' as const),
            stripFinalNewline: true,
          }),
    });
  } catch (err) {
    logger.info({ cmd, args, exitCode: null, ms: elapsed(), err: String(err) }, 'command failed to start');
    throw new RunError(`${cmd}: ${String(err)}`, argv, undefined, undefined, '', '', elapsed(), false, false, { cause: err });
  }

  const pid = child.pid;
  let aborted = false;
  let timedOut = false;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    if (pid === undefined || stopping) return;
    if (interactive) {
      // Same process group as us: signal the child alone.
      stopping = (async () => {
        try { process.kill(pid, 'SIGTERM'); } catch { return; }
        await Promise.race([child.catch(() => undefined), sleep(graceMs)]);
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      })();
    } else {
      stopping = stopGroup(pid, graceMs);
    }
  };
  const onAbort = () => { aborted = true; stop(); };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = opts.timeoutMs !== undefined ? setTimeout(() => { timedOut = true; stop(); }, opts.timeoutMs) : undefined;

  if (pid !== undefined && !interactive) {
    installExitHook();
    liveGroups.add(pid);
    // When the leader exits, stop what it left running in its group (it would also hold our pipes open).
    child.once('exit', () => {
      if (groupAlive(pid)) {
        logger.warn({ cmd, pgid: pid }, 'command left processes running in its group: stopping them');
        void stopGroup(pid, graceMs);
      }
    });
  }

  let result: Awaited<typeof child>;
  try {
    result = await child;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (timer) clearTimeout(timer);
    if (stopping) await stopping;
    if (pid !== undefined && !interactive) {
      if (groupAlive(pid)) await stopGroup(pid, 200);
      liveGroups.delete(pid);
    }
  }

  const ms = elapsed();
  const stdout = typeof result.stdout === 'string' ? result.stdout : '';
  const stderr = typeof result.stderr === 'string' ? result.stderr : '';
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : undefined;
  const signal = result.signal;
  logger.info(
    {
      cmd, args, exitCode: exitCode ?? null, ms,
      ...(signal ? { signal } : {}), ...(aborted ? { aborted } : {}), ...(timedOut ? { timedOut } : {}),
    },
    'command',
  );

  if (aborted || timedOut) {
    const why = aborted ? 'aborted' : `timed out after ${opts.timeoutMs} ms`;
    throw new RunError(`${cmd}: ${why}`, argv, exitCode, signal, stdout, stderr, ms, aborted, timedOut, { cause: aborted ? opts.signal?.reason : undefined });
  }
  if (exitCode === undefined) {
    const why = signal ? `killed by ${signal}` : `failed to start: ${result.message ?? 'unknown error'}`;
    throw new RunError(`${cmd}: ${why}`, argv, undefined, signal, stdout, stderr, ms, false, false, { cause: result.cause });
  }
  if (exitCode !== 0 && opts.reject !== false) {
    const tail = lastLine(stderr) || lastLine(stdout);
    throw new RunError(`${cmd} exited with ${exitCode}${tail ? `: ${tail}` : ''}`, argv, exitCode, undefined, stdout, stderr, ms, false, false);
  }
  return { exitCode, stdout, stderr, ms };
}

/**
 * An AbortSignal that fires on SIGINT/SIGTERM (for a CLI command running
 * children in their own process groups, which a Ctrl-C does not reach): call
 * dispose() when done to restore the default behaviour.
 */
export function abortOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals) => ac.abort(new Error(`interrupted by ${sig}`));
  for (const s of signals) process.on(s, handler);
  return { signal: ac.signal, dispose: () => { for (const s of signals) process.off(s, handler); } };
}
