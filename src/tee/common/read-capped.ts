import { open } from 'node:fs/promises';
import { UsageError } from './errors.js';

/** Upper bounds of the files the verifiers open themselves (collateral directories). */
export const MAX_COLLATERAL_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_COLLATERAL_FILES = 512;

/**
 * Reads a whole file, refusing one larger than `maxBytes` before reading it (a 200 MB "collateral" file must not
 * exhaust the heap). The size is checked twice: fstat first, then the bytes actually read, for files whose size
 * stat does not know (/proc, pipes, a file growing while read).
 */
export async function readFileCapped(path: string, maxBytes: number, what: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (st.size > maxBytes) throw tooLarge(path, maxBytes, what);
    const buf = new Uint8Array(st.isFile() && st.size > 0 ? st.size + 1 : Math.min(maxBytes + 1, 64 * 1024));
    // A regular file is read up to the size fstat reported (as fs.readFile does), saving the read that sees EOF.
    const known = st.isFile() && st.size > 0 ? st.size : -1;
    let len = 0;
    let chunk = buf;
    for (;;) {
      if (len === chunk.length) {
        if (len > maxBytes) throw tooLarge(path, maxBytes, what);
        const bigger = new Uint8Array(Math.min(maxBytes + 1, chunk.length * 2));
        bigger.set(chunk);
        chunk = bigger;
      }
      const { bytesRead } = await fh.read(chunk, len, chunk.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len === known) break;
    }
    if (len > maxBytes) throw tooLarge(path, maxBytes, what);
    return chunk.subarray(0, len);
  } finally {
    await fh.close();
  }
}

function tooLarge(path: string, maxBytes: number, what: string): UsageError {
  return new UsageError('INPUT_TOO_LARGE', `${what} '${path}' is larger than the ${formatBytes(maxBytes)} cap`);
}

export function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
