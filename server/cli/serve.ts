/**
 * `sidereal serve`: run the daemon in the foreground.
 * - SIGTERM or SIGINT: stop taking requests, let the transfers in flight finish for up to
 *   `stopGraceSeconds`, store what is queued (leases, boot events), exit 0. A second one
 *   exits at once (1).
 * - `--insecure`: let the admin API listen on a non-loopback address without TLS (api.tls).
 * - SIGHUP: read the config file again. A file that does not validate is refused, with the
 *   key and the problem logged, and the running config keeps serving; a valid one restarts
 *   DHCP, TFTP, HTTP and the API with it (a change to dataDir, roots or nfs needs a restart
 *   and is refused the same way).
 */
import { UsageError, type CliContext } from './context.js';
import { createLogger, daemonLogDestination } from '../log.js';
import { loadConfig } from '../config/config.js';
import { ConfigError } from '../config/validate.js';
import { startDaemon } from '../daemon/daemon.js';

export async function serveCommand(ctx: CliContext, args: string[] = []): Promise<number> {
  const insecureApi = args.includes('--insecure');
  const unknown = args.find((a) => a !== '--insecure');
  if (unknown !== undefined) throw new UsageError(`serve [--insecure]: unknown argument ${unknown}`);
  const config = ctx.config();
  const logger = createLogger(config.log.level, daemonLogDestination());
  const daemon = await startDaemon(config, logger, { insecureApi });
  logger.info({ interface: config.interface, server: config.serverAddress, http: config.http.publicUrl, dataDir: config.dataDir }, 'ready');

  // One reload at a time; a stop waits for the reload in progress.
  let reloading: Promise<void> = Promise.resolve();
  const reload = async () => {
    let next;
    try {
      next = loadConfig(ctx.configPath);
    } catch (e) {
      const field = e instanceof ConfigError ? e.key : undefined;
      logger.error({ config: ctx.configPath, field, error: (e as Error).message }, 'config reload refused: the running config keeps serving');
      return;
    }
    logger.info({ config: ctx.configPath, graceSeconds: next.stopGraceSeconds }, 'config reload: restarting the services');
    const level = logger.level;
    // Before the restart: the services' loggers are children made as they start.
    logger.level = next.log.level;
    try {
      await daemon.reload(next);
      logger.info({ config: ctx.configPath }, 'config reloaded');
    } catch (e) {
      logger.level = level;
      if ((e as { fatal?: boolean }).fatal) {
        // Nothing serves: exit, so that systemd (Restart=on-failure) starts it afresh.
        logger.fatal({ error: (e as Error).message }, 'config reload left no service running: exiting');
        await daemon.close();
        process.exit(1);
      }
      const field = e instanceof ConfigError ? e.key : undefined;
      logger.error({ config: ctx.configPath, field, error: (e as Error).message }, 'config reload refused: the running config keeps serving');
    }
  };
  const onHup = () => { reloading = reloading.then(reload); };
  process.on('SIGHUP', onHup);

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.off('SIGHUP', onHup);
  // SIGHUP's default action is to exit: while stopping, it is only noted.
  process.on('SIGHUP', () => logger.info('SIGHUP while stopping: ignored'));
  // A second signal does not wait for the transfers: the leases and events not yet stored
  // are simply lost, as after a crash (no ACK went out for a lease not stored).
  const now = (sig: string) => {
    logger.warn({ signal: sig }, 'second signal: stopping now');
    process.exit(1);
  };
  process.once('SIGINT', () => now('SIGINT'));
  process.once('SIGTERM', () => now('SIGTERM'));
  await reloading;
  const graceSeconds = daemon.config.stopGraceSeconds;
  logger.info({ signal, graceSeconds }, 'stopping');
  await daemon.close({ graceMs: graceSeconds * 1000 });
  logger.info('stopped');
  return 0;
}
