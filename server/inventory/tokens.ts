/** API bearer tokens: random, shown once, stored as a SHA-256. */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db.js';
import { InventoryError } from './errors.js';

export type Role = 'admin' | 'read';

export interface TokenInfo {
  id: number;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface Row { id: number; name: string; role: Role; hash: string; created_at: number; last_used_at: number | null; revoked_at: number | null }
const toInfo = (r: Row): TokenInfo => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at });
const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** Prefix so a leaked token is recognisable in logs and secret scanners. */
const PREFIX = 'sdr_';

export class Tokens {
  private readonly byHash;
  private readonly touch;
  constructor(private readonly db: Db) {
    this.byHash = db.prepare<[string], Row>('SELECT * FROM api_tokens WHERE hash = ?');
    this.touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  }

  create(name: string, role: Role): { token: string; info: TokenInfo } {
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new InventoryError('invalid', 'name', `${JSON.stringify(name)} must be 1-64 of letters, digits . _ @ -`);
    if (role !== 'admin' && role !== 'read') throw new InventoryError('invalid', 'role', `${JSON.stringify(role)} must be admin or read`);
    const token = PREFIX + randomBytes(32).toString('base64url');
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM api_tokens WHERE name = ?').get(name)) {
        throw new InventoryError('conflict', 'name', `a token named ${name} exists (revoke it first)`);
      }
      const r = this.db.prepare('INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)').run(name, role, hashOf(token), Date.now());
      return { token, info: this.get(Number(r.lastInsertRowid))! };
    }).immediate();
  }

  get(id: number): TokenInfo | undefined {
    const r = this.db.prepare<[number], Row>('SELECT * FROM api_tokens WHERE id = ?').get(id);
    return r ? toInfo(r) : undefined;
  }

  list(): TokenInfo[] {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY id').all() as Row[]).map(toInfo);
  }

  /** The live token's info, or undefined for an unknown or revoked token. */
  verify(token: string): TokenInfo | undefined {
    if (!token.startsWith(PREFIX)) return undefined;
    const r = this.byHash.get(hashOf(token));
    if (!r || r.revoked_at !== null) return undefined;
    // last_used_at at minute resolution: a busy script must not turn every read into a write.
    const now = Date.now();
    if (r.last_used_at === null || now - r.last_used_at > 60_000) this.touch.run(now, r.id);
    return toInfo(r);
  }

  revoke(name: string): TokenInfo {
    return this.db.transaction(() => {
      const r = this.db.prepare<[string], Row>('SELECT * FROM api_tokens WHERE name = ?').get(name);
      if (!r) throw new InventoryError('not_found', 'name', `no token named ${name}`);
      if (r.revoked_at === null) this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(Date.now(), r.id);
      return this.get(r.id)!;
    }).immediate();
  }
}
