/**
 * Mapping a TFTP filename to a file under a root directory.
 *
 * TFTP has no authentication (RFC 1350 section 7 leaves it to the
 * implementation), so the name is hostile until proven otherwise. The rules:
 * - a leading `/` is stripped: firmware and pxelinux send both `/boot/x`
 *   and `boot/x` for the same file, so `/etc/passwd` means `ROOT/etc/passwd`;
 * - `..` segments, backslashes (a Windows-style separator some clients
 *   send, which could smuggle `..\\`), NUL and names over 255 bytes are
 *   refused outright;
 * - `%` escapes are literal: `%2e%2e` is a file of that name, never decoded;
 * - the result is realpath'd and must stay inside realpath(root), so a
 *   symlink pointing outside is refused while one inside is followed;
 * - only regular files are served.
 * Every refusal carries a reason; the server logs it, the client only sees
 * "File not found" (no oracle for what exists outside the root).
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ServedFile } from '../boot/types.js';

/** Longest filename we accept, in bytes (a path component limit on most filesystems; PXE paths are far shorter). */
export const MAX_NAME_BYTES = 255;

export type NameCheck = { ok: true; segments: string[] } | { ok: false; reason: string };

/** Lexical checks, no filesystem access. */
export function checkName(requested: string): NameCheck {
  if (requested.includes('\0')) return { ok: false, reason: 'refused: NUL byte in name' };
  const bytes = Buffer.byteLength(requested, 'utf8');
  if (bytes > MAX_NAME_BYTES) return { ok: false, reason: `refused: name is ${bytes} bytes, limit ${MAX_NAME_BYTES}` };
  if (requested.includes('\\')) return { ok: false, reason: 'refused: backslash in name' };
  const segments: string[] = [];
  for (const seg of requested.split('/')) {
    if (seg === '' || seg === '.') continue; // leading `/`, `//` and `./` carry no meaning
    if (seg === '..') return { ok: false, reason: 'refused: `..` segment in name' };
    segments.push(seg);
  }
  if (segments.length === 0) return { ok: false, reason: 'refused: empty name' };
  return { ok: true, segments };
}

function inside(realRoot: string, candidate: string): boolean {
  if (candidate === realRoot) return true;
  const prefix = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
  return candidate.startsWith(prefix);
}

export function resolveStatic(root: string, requested: string): ServedFile {
  const name = checkName(requested);
  if (!name.ok) return { kind: 'missing', reason: name.reason };
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    return { kind: 'missing', reason: `root ${root} unusable: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const candidate = path.join(realRoot, ...name.segments);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing', reason: 'not found' };
    if (code === 'ELOOP') return { kind: 'missing', reason: 'refused: symlink loop' };
    if (code === 'ENAMETOOLONG') return { kind: 'missing', reason: 'refused: name too long' };
    return { kind: 'missing', reason: `not readable: ${code ?? String(err)}` };
  }
  if (!inside(realRoot, real)) return { kind: 'missing', reason: 'refused: resolves outside the root' };
  let st;
  try {
    st = statSync(real);
  } catch (err) {
    return { kind: 'missing', reason: `not readable: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  if (st.isDirectory()) return { kind: 'missing', reason: 'refused: is a directory' };
  if (!st.isFile()) return { kind: 'missing', reason: 'refused: not a regular file' };
  return { kind: 'static', path: real };
}

/** True for reasons that mean "we would not serve it even if it existed": logged at warn. */
export function isRefusal(reason: string): boolean {
  return reason.startsWith('refused');
}
