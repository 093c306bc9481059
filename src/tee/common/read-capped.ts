import fs from 'node:fs';
import { UsageError } from './errors.js';

/** Upper bounds of the files the verifiers open themselves (collateral directories). */
export const MAX_COLLATERAL_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_COLLATERAL_FILES = 512;

/**
 * Reads a whole file, refusing one larger than `maxBytes` before reading it (a 200 MB "collateral" file must not
 * exhaust the heap). The size is checked twice: fstat first, then the bytes actually read, for files whose size
 * stat does not know (/proc, pipes, a file growing while read). Plain fs callbacks rather than a FileHandle: a
 * batch of thousands of small files spends several times less CPU this way.
 */
export function readFileCapped(path: string, maxBytes: number, what: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // open and read may wait for the disk: they go to the thread pool. fstat and close on an open descriptor do
    // no I/O, so they run inline (a thread-pool round trip costs far more CPU than the system call).
    fs.open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      const done = (e: Error | null, v?: Uint8Array) => {
        try {
          fs.closeSync(fd);
        } catch {
          // read-only descriptor: nothing to flush, nothing lost
        }
        if (e) reject(e);
        else resolve(v!);
      };
      let st: fs.Stats;
      try {
        st = fs.fstatSync(fd);
      } catch (e) {
        return done(e as Error);
      }
      if (st.size > maxBytes) return done(tooLarge(path, maxBytes, what));
      // A regular file is read up to the size fstat reported (as fs.readFile does), saving the read that sees EOF.
      const known = st.isFile() && st.size > 0 ? st.size : -1;
      let buf = new Uint8Array(known > 0 ? known + 1 : Math.min(maxBytes + 1, 64 * 1024));
      let len = 0;
      const finish = () => (len > maxBytes ? done(tooLarge(path, maxBytes, what)) : done(null, buf.subarray(0, len)));
      const step = (): void => {
        if (len === buf.length) {
          if (len > maxBytes) return done(tooLarge(path, maxBytes, what));
          const bigger = new Uint8Array(Math.min(maxBytes + 1, buf.length * 2));
          bigger.set(buf);
          buf = bigger;
        }
        fs.read(fd, buf, len, buf.length - len, null, (err, n) => {
          if (err) return done(err);
          if (n === 0) return finish();
          len += n;
          if (len === known) return finish();
          step();
        });
      };
      step();
    });
  });
}

function tooLarge(path: string, maxBytes: number, what: string): UsageError {
  return new UsageError('INPUT_TOO_LARGE', `${what} '${path}' is larger than the ${formatBytes(maxBytes)} cap`);
}

export function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/**
 * readFileCapped's synchronous twin, for a batch that reads many small files between CPU-bound steps (the CLI's
 * `verify`): open, fstat, one read and close on the calling thread cost a few microseconds from the page cache,
 * where each thread-pool round trip of the asynchronous version costs more CPU than the read itself. Same caps.
 * With `scratch` (a buffer the caller reuses), a file that fits it is read with no fstat at all: one read, plus one
 * that sees the end, cost less than building fstat's Stats object; its bytes are copied out. A larger file (or one
 * still growing) is read on from the same descriptor, never reopened (a pipe would lose what was read).
 */
export function readFileCappedSync(path: string, maxBytes: number, what: string, scratch?: Uint8Array): Uint8Array {
  const fd = fs.openSync(path, 'r');
  try {
    let len = 0;
    if (scratch) {
      len = fs.readSync(fd, scratch, 0, scratch.length, null);
      if (len < scratch.length) {
        const more = len === 0 ? 0 : fs.readSync(fd, scratch, len, scratch.length - len, null);
        if (more === 0 && len <= maxBytes) return scratch.slice(0, len);
        len += more;
      }
    }
    const st = fs.fstatSync(fd);
    if (st.size > maxBytes) throw tooLarge(path, maxBytes, what);
    const known = st.isFile() && st.size > 0 ? st.size : -1;
    let buf = new Uint8Array(Math.max(len, known > 0 ? known + 1 : Math.min(maxBytes + 1, 64 * 1024)));
    if (len > 0) buf.set(scratch!.subarray(0, len));
    while (len !== known) {
      if (len === buf.length) {
        if (len > maxBytes) throw tooLarge(path, maxBytes, what);
        const bigger = new Uint8Array(Math.min(maxBytes + 1, buf.length * 2));
        bigger.set(buf);
        buf = bigger;
      }
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > maxBytes) throw tooLarge(path, maxBytes, what);
    return buf.subarray(0, len);
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // read-only descriptor: nothing to flush, nothing lost
    }
  }
}
