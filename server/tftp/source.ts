/**
 * What a session reads blocks from: a file on disk through positioned
 * reads (a 100 MiB initrd is never loaded into memory, and concurrent
 * sessions on the same file share the page cache), or a Buffer rendered by
 * the boot decision (menus, iPXE scripts).
 */
import { constants, promises as fsp } from 'node:fs';

export interface FileSource {
  readonly size: number;
  /** Fill `buffers` in order from byte `position` (one preadv for files); returns the bytes read. */
  readv(buffers: Buffer[], position: number): Promise<number>;
  close(): Promise<void>;
}

export function bufferSource(content: Buffer): FileSource {
  return {
    size: content.length,
    async readv(buffers, position) {
      let pos = position;
      for (const b of buffers) {
        const n = content.copy(b, 0, pos, Math.min(content.length, pos + b.length));
        pos += n;
        if (n < b.length) break;
      }
      return pos - position;
    },
    async close() {},
  };
}

/**
 * Open read-only. O_NOFOLLOW: the path was realpath'd and checked by the
 * resolver; if the last component was swapped for a symlink since, refuse
 * rather than follow it out of the root.
 */
export async function openFileSource(path: string): Promise<FileSource> {
  const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    return {
      size: st.size,
      async readv(buffers, position) {
        // readv may return short on a regular file only at EOF, but loop on
        // a short read anyway rather than trust that.
        let total = 0;
        let rest = buffers;
        while (rest.length > 0) {
          const { bytesRead } = await fh.readv(rest, position + total);
          if (bytesRead === 0) break;
          total += bytesRead;
          let skip = bytesRead;
          const next: Buffer[] = [];
          for (const b of rest) {
            if (skip >= b.length) { skip -= b.length; continue; }
            next.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
          rest = next;
        }
        return total;
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
