/**
 * Runs the DHCP server inside a network namespace for integration tests:
 *   ip netns exec NS node dist/test/helpers/dhcp-runner.js '<json config>'
 * (Node cannot enter a namespace itself.) Uses the memory backend, logs pino
 * JSON lines to stdout and prints {"listening":true,...} once bound.
 * SIGTERM closes the socket and exits; SIGUSR2 prints the stats as a line.
 */
import { pino } from 'pino';
import type { Reservation } from '../../server/boot/types.js';
import { MemoryBackend } from '../../server/dhcp/memory-backend.js';
import type { DhcpServerOptions } from '../../server/dhcp/options-config.js';
import { startDhcpServer } from '../../server/dhcp/server.js';

export type RunnerConfig = Omit<DhcpServerOptions, 'backend' | 'logger'> & {
  /** Address for siaddr / option 66 / URLs; defaults to serverId. */
  nextServer?: string;
  reservations?: Record<string, Reservation>;
  logLevel?: string;
};

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: dhcp-runner.js <json config>');
  const cfg = JSON.parse(raw) as RunnerConfig;
  const logger = pino({ level: cfg.logLevel ?? 'debug', base: { svc: 'sidereal' } });
  const backend = new MemoryBackend({
    server: cfg.nextServer ?? cfg.serverId,
    reservations: new Map(Object.entries(cfg.reservations ?? {})),
  });
  const server = await startDhcpServer({ ...cfg, backend, logger });
  process.stdout.write(`${JSON.stringify({ listening: true, pid: process.pid, ...server.address() })}\n`);
  process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ stats: server.stats })}\n`));
  const stop = () => { void server.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String((err as Error)?.stack ?? err) })}\n`);
  process.exit(1);
});
