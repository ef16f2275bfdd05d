/**
 * The wanted exports in each server's own syntax. Both outputs are whole files Sidereal owns
 * (never a file an admin edits), written to a temporary name and renamed into place.
 */
import type { WantedExport } from './wanted.js';

const HEADER = 'Written by Sidereal from its inventory (server/nfs): do not edit, it is rewritten on every change.';
/** SIDUS's options for roots; `async` because a root is rebuilt, not written to, by the nodes. */
const OPTIONS = 'no_subtree_check,async,no_root_squash';

/** /etc/exports syntax, for exportfs: one line per path, the most specific client first. */
export function renderKernelExports(exports: WantedExport[]): string {
  const lines = exports.map((e) => `"${e.path}" ${e.clients.map((c) => `${c.match}(${c.access},${OPTIONS})`).join(' ')}`);
  return [`# ${HEADER}`, ...lines, ''].join('\n');
}

/**
 * nfs-ganesha EXPORT blocks (VFS FSAL), for a file `%include`d from ganesha.conf. `exportId`
 * must give a path the same id every time: ganesha puts it in the file handles nodes hold.
 * Pseudo = Path, so NFSv4 clients mount the same path as NFSv3 ones.
 */
export function renderGaneshaExports(exports: WantedExport[], exportId: (path: string) => number): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const blocks = exports.map((e) => [
    'EXPORT {',
    `  Export_Id = ${exportId(e.path)};`,
    `  Path = ${q(e.path)};`,
    `  Pseudo = ${q(e.path)};`,
    '  Protocols = 3, 4;',
    '  Transports = TCP;',
    '  SecType = sys;',
    '  Squash = No_Root_Squash;',
    '  Access_Type = None;',
    '  FSAL { Name = VFS; }',
    ...e.clients.map((c) => `  CLIENT { Clients = ${c.match}; Access_Type = ${c.access === 'rw' ? 'RW' : 'RO'}; }`),
    '}',
  ].join('\n'));
  return [`# ${HEADER}`, ...blocks, ''].join('\n');
}
