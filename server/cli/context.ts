/** What every CLI command shares: the config file, the inventory, output helpers, usage errors. */
import { userInfo } from 'node:os';
import { loadConfig, type SiderealConfig } from '../config/config.js';
import { Inventory } from '../inventory/index.js';
import { networkPolicy } from '../daemon/network.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_CONFIG = '/etc/sidereal/sidereal.yaml';

/** Who a CLI write is by, in the audit log. */
export const cliActor = (): string => `cli:${userInfo().username}`;

export interface CliContext {
  configPath: string;
  json: boolean;
  out(line: string): void;
  config(): SiderealConfig;
  inventory(): Inventory;
  close(): void;
}

export function createContext(configPath: string | undefined, json: boolean): CliContext {
  const path = configPath ?? process.env.SIDEREAL_CONFIG ?? DEFAULT_CONFIG;
  let config: SiderealConfig | undefined;
  let inv: Inventory | undefined;
  return {
    configPath: path,
    json,
    out: (line) => process.stdout.write(line + '\n'),
    config: () => (config ??= loadConfig(path)),
    // Until the admin API exists (issue 3), the CLI writes the inventory directly, in transactions.
    inventory() {
      if (!inv) {
        const c = this.config();
        inv = Inventory.open(c.dataDir, networkPolicy(c));
      }
      return inv;
    },
    close: () => inv?.close(),
  };
}

/** A fixed-width table for terminals. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}
