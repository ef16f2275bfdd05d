/**
 * Small validation helpers that always name the key path and the value they
 * refused ("dhcp.pool.start: 10.0.0.300 is not an IPv4 address"), so an admin
 * reading the error knows which line of the YAML to fix.
 */

export class ConfigError extends Error {
  constructor(public readonly key: string, public readonly problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'nothing';
  return JSON.stringify(v) ?? String(v);
}

export function rejectUnknownKeys(obj: Obj, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      const where = path ? `${path}.${k}` : k;
      throw new ConfigError(where, `unknown key (expected one of: ${allowed.join(', ')})`);
    }
  }
}

export function section(obj: Obj, key: string, path: string, required: boolean): Obj | undefined {
  const v = obj[key];
  const where = join(path, key);
  if (v === undefined || v === null) {
    if (required) throw new ConfigError(where, 'is required');
    return undefined;
  }
  if (!isObj(v)) throw new ConfigError(where, `must be a mapping, got ${describe(v)}`);
  return v;
}

export function str(obj: Obj, key: string, path: string): string;
export function str(obj: Obj, key: string, path: string, fallback: string | null): string | undefined;
export function str(obj: Obj, key: string, path: string, fallback?: string | null): string | undefined {
  const v = obj[key];
  const where = join(path, key);
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new ConfigError(where, 'is required');
    return fallback ?? undefined;
  }
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(where, `must be a non-empty string, got ${describe(v)}`);
  return v;
}

export function int(obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number {
  const v = obj[key];
  const where = join(path, key);
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(where, `must be a whole number, got ${describe(v)}`);
  if (v < min || v > max) throw new ConfigError(where, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function oneOf<T extends string>(obj: Obj, key: string, path: string, choices: readonly T[], fallback: T): T {
  const v = obj[key];
  const where = join(path, key);
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new ConfigError(where, `must be one of ${choices.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}
