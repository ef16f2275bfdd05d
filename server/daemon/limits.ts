/**
 * Open files: every TFTP transfer holds a socket and its file; every HTTP connection a socket and,
 * while a body is sent, the file and the sendfile pump's duplicates of both (server/http/sendfile.ts).
 * The caps (tftp.maxSessions, http.maxConnections) bound that; this
 * checks at start that the process may open as many (RLIMIT_NOFILE; Node raises its soft limit
 * to the hard one), so a storm meets the caps, not EMFILE in the middle of a transfer.
 */
import { readFileSync } from 'node:fs';
import type { SiderealConfig } from '../config/config.js';

/** Descriptors beyond the transfers: the inventory (database, WAL, shm), logs, DHCP, the API, build logs. */
const BASE_DESCRIPTORS = 256;

export function descriptorsNeeded(config: SiderealConfig): number {
  const tftp = config.tftp.enabled ? 2 * config.tftp.maxSessions : 0;
  return tftp + 4 * config.http.maxConnections + BASE_DESCRIPTORS;
}

/** The soft limit on open files of this process, from /proc/self/limits (undefined: unknown or unlimited). */
export function openFilesLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(limits, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A warning naming the keys when the caps allow more descriptors than the process may open; else null. */
export function openFilesProblem(config: SiderealConfig, limit: number | undefined): string | null {
  const need = descriptorsNeeded(config);
  if (limit === undefined || limit >= need) return null;
  return `the caps allow ${need} open files (tftp.maxSessions ${config.tftp.maxSessions} and http.maxConnections ${config.http.maxConnections}, ` +
    `two per TFTP session, four per HTTP connection, and ${BASE_DESCRIPTORS} more) but this process may open ${limit}: raise LimitNOFILE (ulimit -n) or lower the caps`;
}
