/**
 * Opening a file for a transfer. The native pump reads blocks with pread on
 * a duplicate of this descriptor (a 100 MiB initrd is never loaded into
 * memory, and concurrent sessions on the same file share the page cache);
 * rendered content (menus, iPXE scripts) goes to the pump as a Buffer.
 */
import { constants, promises as fsp } from 'node:fs';

export interface OpenFile {
  readonly fd: number;
  readonly size: number;
  close(): Promise<void>;
}

/**
 * Open read-only. O_NOFOLLOW: the path was realpath'd and checked by the
 * resolver; if the last component was swapped for a symlink since, refuse
 * rather than follow it out of the root.
 */
export async function openBootFile(path: string): Promise<OpenFile> {
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    return { fd: fh.fd, size: st.size, close: () => fh.close() };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
