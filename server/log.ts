import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

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

/** A logger that drops everything: for unit tests and `explain`. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
