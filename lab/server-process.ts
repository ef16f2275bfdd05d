/**
 * A server the lab runs in its namespace (dnsmasq, `sidereal serve`): its
 * output teed to a log file, started when its log says it is ready, stopped
 * by PID. One place, so both servers of a comparison start the same way.
 */
import { createWriteStream } from 'node:fs';
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
  logFile: string;
  /** True once the log so far shows the server is listening. */
  ready(log: string): boolean;
  readyTimeoutMs: number;
  stopGraceMs?: number;
}

export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  const out = createWriteStream(spec.logFile);
  let text = '';
  const child: ResultPromise = nsStart(spec.ns, spec.cmd, spec.args, {
    stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false,
  });
  const onData = (c: Buffer) => {
    text += c.toString();
    out.write(c);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const server: RunningServer = {
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    log: async () => text,
    stop: async () => {
      await stopChild(child, spec.stopGraceMs);
      await new Promise<void>((r) => out.end(r));
    },
  };
  const deadline = Date.now() + spec.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      await server.stop();
      throw new Error(`${spec.name} exited at start: ${text.trim().slice(-2000)}`);
    }
    if (spec.ready(text)) return server;
    await sleep(50);
  }
  await server.stop();
  throw new Error(`${spec.name} not ready after ${spec.readyTimeoutMs} ms: ${text.trim().slice(-2000)}`);
}
