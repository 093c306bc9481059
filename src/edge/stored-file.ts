/**
 * Files that hold item bytes for the cache index: persisted collection files and spooled LIST bodies. A file is
 * closed only once nothing needs it: the disk cache retires it when no entry points into it any more, and a
 * response streaming ranges of it pins it until done (closing under a reader could hand it a reused descriptor).
 */
import { closeSync, openSync, readSync, unlinkSync, write as fsWrite } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PersistedItems } from './object-cache.js';

let nextId = 0;

export class StoredFile implements PersistedItems {
  readonly id = ++nextId;
  private pins = 0;
  private retired = false;
  private closed = false;

  constructor(readonly fd: number) {}

  readInto(buf: Buffer, off: number, len: number): number {
    this.check();
    return readSync(this.fd, buf, 0, Math.min(len, buf.length), off);
  }

  readRange(off: number, len: number): Buffer {
    this.check();
    const b = Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, b, done, len - done, off + done);
      if (n <= 0) throw new Error('short read from a cache file');
      done += n;
    }
    return b;
  }

  pin(): () => void {
    this.pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pins--;
      this.maybeClose();
    };
  }

  /** Nothing will take new references to this file: close it once the last reader is done. */
  retire(): void {
    this.retired = true;
    this.maybeClose();
  }

  get isRetired(): boolean {
    return this.retired;
  }

  private maybeClose(): void {
    if (this.retired && this.pins === 0 && !this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
  }

  private check(): void {
    if (this.closed) throw new Error('cache file read after it was closed');
  }
}

/** Where a proxied LIST body is kept while it streams to the client, until it is indexed. */
export interface ListSpool {
  readonly size: number;
  append(chunk: Buffer): void;
  /** Resolves when every appended byte is stored (rejects if storing failed). */
  done(): Promise<void>;
  /** Reads up to `len` bytes at `off` into `buf`; returns how many. */
  readInto(buf: Buffer, off: number, len: number): number;
  /** The file items can point into (undefined for a memory spool: items must be copied). */
  readonly file: StoredFile | undefined;
  /** Drops the spool (torn response, failed indexing, or nothing of it is referenced). */
  discard(): void;
}

/**
 * A LIST body written to an anonymous file in the cache directory as it streams (unlinked right after opening:
 * nothing to clean up after a crash). Positional writes need no ordering; the bytes stay off the V8 heap and out
 * of malloc, in the page cache the kernel can reclaim.
 */
export class FileSpool implements ListSpool {
  readonly file: StoredFile;
  size = 0;
  private pending = 0;
  private error: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor(dir: string) {
    const path = join(dir, `.spool-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = openSync(path, 'w+', 0o600);
    unlinkSync(path);
    this.file = new StoredFile(fd);
  }

  append(chunk: Buffer): void {
    if (this.error) return;
    const pos = this.size;
    this.size += chunk.length;
    this.writeAt(chunk, pos);
  }

  private writeAt(chunk: Buffer, pos: number): void {
    this.pending++;
    fsWrite(this.file.fd, chunk, 0, chunk.length, pos, (err, n) => {
      this.pending--;
      if (err) this.error ??= err;
      else if (n < chunk.length) this.writeAt(chunk.subarray(n), pos + n); // short write: the rest
      if (this.pending === 0) for (const w of this.waiters.splice(0)) w();
    });
  }

  done(): Promise<void> {
    const settle = () => (this.error ? Promise.reject(this.error) : Promise.resolve());
    if (this.pending === 0) return settle();
    return new Promise<void>((r) => this.waiters.push(r)).then(settle);
  }

  readInto(buf: Buffer, off: number, len: number): number {
    return this.file.readInto(buf, off, len);
  }

  discard(): void {
    // Writes in flight still use the descriptor: retire once they are done.
    if (this.pending === 0) this.file.retire();
    else this.waiters.push(() => this.file.retire());
  }
}

/** The spool of a hub without a disk cache: the chunks as received (items are copied out when indexed). */
export class MemorySpool implements ListSpool {
  readonly file = undefined;
  size = 0;
  private chunks: Buffer[] = [];

  append(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  done(): Promise<void> {
    return Promise.resolve();
  }

  readInto(buf: Buffer, off: number, len: number): number {
    let pos = 0;
    let n = 0;
    for (const c of this.chunks) {
      if (n >= len || n >= buf.length) break;
      const end = pos + c.length;
      if (end > off + n) {
        const from = off + n - pos;
        n += c.copy(buf, n, from, Math.min(c.length, from + Math.min(len, buf.length) - n));
      }
      pos = end;
    }
    return n;
  }

  discard(): void {
    this.chunks = [];
  }
}
