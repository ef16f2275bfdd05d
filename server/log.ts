import { destination, pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger };

/**
 * One JSON line per event on stdout (or a given destination). Every service
 * takes a child of this logger with its own `svc` field so a line says which
 * protocol wrote it; events about a node always carry its `mac`.
 */
export function createLogger(level: string = process.env.SIDEREAL_LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { svc: 'sidereal' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The longest a daemon log line waits in memory before it is written. */
const DAEMON_LOG_FLUSH_MS = 100;
/** Lines held while stdout does not keep up (a stuck journal): beyond it they are dropped, not piled up. */
const DAEMON_LOG_MAX_BYTES = 16 << 20;

/**
 * The daemon's stdout, written in blocks: one write(2) per 4 KiB of lines, or
 * every DAEMON_LOG_FLUSH_MS, on libuv's thread pool. A write per line cost the
 * event loop as much as a DHCP reply's encoding (one line per packet at 2,000
 * packets/s). On exit (a signal, process.exit, an uncaught exception) pino
 * writes what is held; a SIGKILL loses at most the last DAEMON_LOG_FLUSH_MS.
 */
export function daemonLogDestination(fd = 1): DestinationStream {
  const dest = destination({ dest: fd, sync: false, minLength: 4096, maxLength: DAEMON_LOG_MAX_BYTES });
  const timer = setInterval(() => {
    try { dest.flush(); } catch { /* closed at exit */ }
  }, DAEMON_LOG_FLUSH_MS);
  timer.unref();
  dest.on('close', () => clearInterval(timer));
  return dest;
}

/** A logger that drops everything: for unit tests and `explain`. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
