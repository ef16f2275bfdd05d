/** What every CLI command shares: the config file, the inventory, output helpers, usage errors. */
import { userInfo } from 'node:os';
import { loadConfig, type SiderealConfig } from '../config/config.js';
import { Inventory } from '../inventory/index.js';
import { networkPolicy } from '../daemon/network.js';
import { httpTransport, localTransport, type ApiTransport } from './api-client.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_CONFIG = '/etc/sidereal/sidereal.yaml';

/** Who a CLI write is by, in the audit log. */
export const cliActor = (): string => `cli:${userInfo().username}`;

export interface GlobalOptions {
  configPath?: string;
  json: boolean;
  url?: string;
  token?: string;
  offline: boolean;
}

export interface CliContext {
  configPath: string;
  json: boolean;
  out(line: string): void;
  config(): SiderealConfig;
  /** The inventory file itself: for `serve` and `token`, which cannot go through the API. */
  inventory(): Inventory;
  /** The admin API: over HTTP, or in this process with --offline. */
  api: ApiTransport['call'];
  /** A server-sent event stream of the API (a build's progress). */
  events: ApiTransport['events'];
  text: ApiTransport['text'];
  /** --offline: the API runs in this process (a build then runs here too). */
  offline: boolean;
  close(): Promise<void>;
}

/** The API's address: --url, $SIDEREAL_URL, else the config's api.listen and api.port. */
function apiUrl(opts: GlobalOptions, config: () => SiderealConfig): string {
  if (opts.url) return opts.url;
  if (process.env.SIDEREAL_URL) return process.env.SIDEREAL_URL;
  const c = config();
  // A self-signed certificate: NODE_EXTRA_CA_CERTS=cert.pem lets the CLI trust it.
  return `${c.api.tls ? 'https' : 'http'}://${c.api.listen}:${c.api.port}`;
}

export function createContext(opts: GlobalOptions): CliContext {
  const path = opts.configPath ?? process.env.SIDEREAL_CONFIG ?? DEFAULT_CONFIG;
  let config: SiderealConfig | undefined;
  let inv: Inventory | undefined;
  let transport: ApiTransport | undefined;
  const loadCfg = () => (config ??= loadConfig(path));
  const inventory = () => {
    if (!inv) inv = Inventory.open(loadCfg().dataDir, networkPolicy(loadCfg()));
    return inv;
  };
  const connect = (): ApiTransport => {
    if (opts.offline) return localTransport(inventory(), loadCfg(), cliActor());
    const token = opts.token ?? process.env.SIDEREAL_TOKEN;
    if (!token) {
      throw new UsageError('no API token: pass --token or set SIDEREAL_TOKEN (make one on the server with `sidereal token create --name NAME --role admin`), or run on the server with --offline');
    }
    return httpTransport(apiUrl(opts, loadCfg), token);
  };
  return {
    configPath: path,
    json: opts.json,
    out: (line) => process.stdout.write(line + '\n'),
    config: loadCfg,
    inventory,
    api: (method, url, body) => (transport ??= connect()).call(method, url, body),
    events: (url, onEvent, signal) => (transport ??= connect()).events(url, onEvent, signal),
    text: (url) => (transport ??= connect()).text(url),
    offline: opts.offline,
    async close() {
      await transport?.close();
      inv?.close();
    },
  };
}

/** A fixed-width table for terminals. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}
