/**
 * A server the lab or a bench runs in its namespace (dnsmasq, nginx,
 * `sidereal serve`): its output goes straight to a log file (not through
 * this process: a server logging a line per packet must not cost the
 * measuring process), it counts as started when its log says it is ready,
 * and it is stopped by PID. One place, so every server of a comparison
 * starts the same way.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ResultPromise } from 'execa';
import { nsStart } from './netns.js';
import { sleep, stopChild } from './proc.js';

export interface RunningServer {
  pid: number;
  logFile: string;
  /** Everything the server logged so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface ServerSpec {
  name: string;
  ns: string;
  cmd: string;
  args: string[];
  /** Emptied at start, then stdout and stderr. */
  logFile: string;
  /** True once the log so far shows the server is listening. */
  ready(log: string): boolean;
  readyTimeoutMs: number;
  stopGraceMs?: number;
}

export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  closeSync(openSync(spec.logFile, 'w')); // a fresh log per start
  const child: ResultPromise = nsStart(spec.ns, spec.cmd, spec.args, {
    stdin: 'ignore', stdout: { file: spec.logFile, append: true }, stderr: { file: spec.logFile, append: true }, buffer: false,
  });
  const server: RunningServer = {
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    log: () => readFile(spec.logFile, 'utf8'),
    stop: () => stopChild(child, spec.stopGraceMs),
  };
  const text = () => readFileSync(spec.logFile, 'utf8');
  const deadline = Date.now() + spec.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      await server.stop();
      throw new Error(`${spec.name} exited at start: ${text().trim().slice(-2000)}`);
    }
    if (spec.ready(text())) return server;
    await sleep(50);
  }
  await server.stop();
  throw new Error(`${spec.name} not ready after ${spec.readyTimeoutMs} ms: ${text().trim().slice(-2000)}`);
}
