/** `sidereal serve`: run the daemon in the foreground until SIGINT/SIGTERM. */
import { type CliContext } from './context.js';
import { createLogger } from '../log.js';
import { startDaemon } from '../daemon/daemon.js';

export async function serveCommand(ctx: CliContext): Promise<number> {
  const config = ctx.config();
  const logger = createLogger(config.log.level);
  const daemon = await startDaemon(config, logger);
  logger.info({ interface: config.interface, server: config.serverAddress, http: config.http.publicUrl, dataDir: config.dataDir }, 'ready');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await daemon.close();
  logger.info('stopped');
  return 0;
}
