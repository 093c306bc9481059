/**
 * Crash-safe on-disk copy of the hub's cache. Each collection is one file written as temp file → fsync → rename
 * → fsync(dir), so a crash leaves either the old or the new file. Every file starts with a header line carrying
 * the SHA-256 and length of its body; a torn or altered file fails the check and is ignored (never served).
 * The total size is bounded: a collection that would push the cache over `maxBytes` is not persisted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Collection, ObjectCache, type CacheEntry, type CollectionMeta, type DiscoveryEntry, type PersistedItems } from './object-cache.js';
import { ItemStreamScanner } from './list-scanner.js';

const MAGIC = 'COFFER-EDGE-CACHE v1';
const COMMA = Buffer.from(',');

export function encodeCacheFile(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const digest = createHash('sha256').update(b).digest('hex');
  return Buffer.concat([Buffer.from(`${MAGIC} sha256=${digest} bytes=${b.length}\n`), b]);
}

export function headerLength(buf: Buffer): number {
  return buf.indexOf(0x0a) + 1;
}

export type DecodeResult = { ok: true; body: Buffer } | { ok: false; reason: string };

export function decodeCacheFile(buf: Buffer): DecodeResult {
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > 200) return { ok: false, reason: 'missing header line' };
  const m = buf.subarray(0, nl).toString('latin1').match(/^COFFER-EDGE-CACHE v1 sha256=([0-9a-f]{64}) bytes=(\d+)$/);
  if (!m) return { ok: false, reason: 'unknown header' };
  const body = buf.subarray(nl + 1);
  if (body.length !== Number(m[2])) return { ok: false, reason: `length ${body.length} != ${m[2]} (torn write)` };
  if (createHash('sha256').update(body).digest('hex') !== m[1]) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, body };
}

export async function writeFileAtomic(path: string, data: Buffer | Buffer[]): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    // A list of buffers is written with writev: a 17 MiB collection is never concatenated into one buffer.
    if (Array.isArray(data)) {
      for (let i = 0; i < data.length; i += 512) await writeAllV(fh, data.slice(i, i + 512));
    } else await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  const dh = await fsp.open(dirname(path), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

function require_size(fd: number): number {
  return fstatSync(fd).size;
}

class RejectedFile extends Error {}

async function writeAllV(fh: import('node:fs/promises').FileHandle, bufs: Buffer[]): Promise<void> {
  let rest = bufs.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest);
    // Short write: drop what was written and retry the remainder.
    while (rest.length > 0 && bytesWritten >= rest[0].length) {
      bytesWritten -= rest[0].length;
      rest = rest.slice(1);
    }
    if (rest.length > 0 && bytesWritten > 0) rest = [rest[0].subarray(bytesWritten), ...rest.slice(1)];
  }
}

/** Header line for a body given in pieces (hashed piecewise). */
function headerFor(parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  let n = 0;
  for (const p of parts) {
    h.update(p);
    n += p.length;
  }
  return Buffer.from(`${MAGIC} sha256=${h.digest('hex')} bytes=${n}\n`);
}

const safe = (s: string) => s.replace(/[^a-z0-9._-]/gi, '_') || '_';

export interface DiskCacheLog {
  (event: string, detail: Record<string, unknown>): void;
}

export class DiskCache {
  private readonly sizes = new Map<string, number>();
  /** Open descriptors on the file generation each collection's entries point into. */
  private readonly open = new Map<string, PersistedItems & { fd: number }>();
  private gen = 0;
  private writing: Promise<void> = Promise.resolve();
  private fullWarned = new Set<string>();

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly log: DiskCacheLog = () => {},
  ) {}

  pathFor(id: string): string {
    const [component, rest] = [id.slice(0, id.indexOf('/')), id.slice(id.indexOf('/') + 1)];
    return join(this.dir, safe(component), `${safe(rest)}.json`);
  }

  private discoveryPath(): string {
    return join(this.dir, '_discovery.json');
  }

  totalBytes(): number {
    let n = 0;
    for (const v of this.sizes.values()) n += v;
    return n;
  }

  /** Loads every intact file into `cache`; torn or foreign files are skipped and reported. */
  async load(cache: ObjectCache): Promise<{ loaded: number; rejected: number }> {
    let loaded = 0;
    let rejected = 0;
    const files: string[] = [];
    const walk = async (d: string) => {
      let names: import('node:fs').Dirent[];
      try {
        names = await fsp.readdir(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const n of names) {
        const p = join(d, n.name);
        if (n.isDirectory()) await walk(p);
        else if (n.name.endsWith('.json')) files.push(p);
      }
    };
    await walk(this.dir);
    for (const p of files) {
      try {
        if (p === this.discoveryPath()) {
          const buf = await fsp.readFile(p);
          const r = decodeCacheFile(buf);
          if (!r.ok) throw new RejectedFile(r.reason);
          const doc = JSON.parse(r.body.toString('utf8'));
          for (const [path, e] of Object.entries(doc.discovery as Record<string, DiscoveryEntry>)) cache.discovery.set(path, e);
          this.sizes.set(p, buf.length);
        } else {
          this.loadCollection(cache, p);
        }
        loaded++;
      } catch (e) {
        rejected++;
        this.log('cache_file_rejected', { file: relative(this.dir, p), reason: e instanceof RejectedFile ? e.message : `bad content: ${(e as Error).message}` });
      }
    }
    return { loaded, rejected };
  }

  /**
   * Loads one collection file streaming, 1 MiB at a time: the checksum is computed as it is read and entries are
   * indexed as their items close, pointing into the file; nothing is added to the cache unless the whole file
   * checks out. No buffer the size of the file is ever allocated (that alone would pin ~17 MiB per 10,000 pods).
   */
  private loadCollection(cache: ObjectCache, p: string): void {
    const fd = openSync(p, 'r');
    let meta: CollectionMeta | undefined;
    try {
      const size = fstatSync(fd).size;
      const headBuf = Buffer.alloc(Math.min(200, size));
      readSync(fd, headBuf, 0, headBuf.length, 0);
      const nl = headBuf.indexOf(0x0a);
      const m = nl > 0 ? headBuf.subarray(0, nl).toString('latin1').match(/^COFFER-EDGE-CACHE v1 sha256=([0-9a-f]{64}) bytes=(\d+)$/) : null;
      if (!m) throw new RejectedFile('missing or unknown header');
      const base = nl + 1;
      if (size - base !== Number(m[2])) throw new RejectedFile(`length ${size - base} != ${m[2]} (torn write)`);
      const hash = createHash('sha256');
      const pending: { bytes: Buffer; off: number }[] = [];
      const entries: CacheEntry[] = [];
      let probe: Collection | undefined;
      const scanner = new ItemStreamScanner((bytes, off) => {
        if (probe) entries.push(this.indexed(probe, bytes, base + off));
        else pending.push({ bytes, off });
      });
      const chunk = Buffer.allocUnsafe(1024 * 1024);
      for (let pos = base; pos < size; ) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
        if (n <= 0) throw new RejectedFile('short read');
        const view = chunk.subarray(0, n);
        hash.update(view);
        scanner.feed(view, pos - base);
        // Our writer puts "meta" before "items": once known, items are indexed as they close, not buffered.
        if (!probe) {
          const h = scanner.headFields();
          if (h?.meta?.kind) {
            probe = new Collection(h.meta as CollectionMeta);
            for (const x of pending.splice(0)) entries.push(this.indexed(probe, x.bytes, base + x.off));
          }
        }
        pos += n;
      }
      if (hash.digest('hex') !== m[1]) throw new RejectedFile('checksum mismatch');
      const envelope = scanner.finish();
      meta = envelope.meta as CollectionMeta;
      if (!meta?.kind || !meta.resource) throw new RejectedFile('no collection meta');
      probe ??= new Collection(meta);
      for (const x of pending) entries.push(this.indexed(probe, x.bytes, base + x.off));
      const component = relative(this.dir, p).split(sep)[0];
      const c = cache.collection(component, meta)!;
      const persisted = this.attach(p);
      for (const e of entries) {
        e.loc = { gen: persisted.gen, off: e.loc!.off, len: e.loc!.len };
        c.upsertEntry(e);
      }
      c.persisted = persisted;
      c.rv = String(envelope.rv ?? '');
      c.dirty = false;
      this.sizes.set(p, size);
    } finally {
      closeSync(fd);
    }
  }

  private indexed(c: Collection, bytes: Buffer, off: number): CacheEntry {
    const e = c.entryFromBytes(bytes);
    delete e.raw;
    e.loc = { gen: 0, off, len: bytes.length };
    return e;
  }

  /** The file body and where each entry's bytes land in it (offsets relative to the body). */
  private serialize(c: Collection): { parts: Buffer[]; size: number; placed: { key: string; entry: CacheEntry; off: number; len: number }[] } {
    const parts: Buffer[] = [Buffer.from(`{"meta":${JSON.stringify(c.meta)},"rv":${JSON.stringify(c.rv)},"items":[`)];
    let pos = parts[0].length;
    const bytes = c.bytesReader();
    const placed: { key: string; entry: CacheEntry; off: number; len: number }[] = [];
    let first = true;
    // Key order (the order LISTs are served in), so a LIST reads long contiguous runs of the file.
    for (const { key, entry: e } of c.select(undefined, [], [])) {
      if (!first) {
        parts.push(COMMA);
        pos += 1;
      }
      first = false;
      const b = bytes(e);
      parts.push(b);
      placed.push({ key, entry: e, off: pos, len: b.length });
      pos += b.length;
    }
    parts.push(Buffer.from(']}'));
    return { parts, size: pos + 2, placed };
  }

  /** Opens the file just written (or loaded) as a new generation readers can use; the previous one is closed. */
  private attach(path: string): PersistedItems & { fd: number } {
    // Callers re-point every entry synchronously right after, so the previous generation is unused from here on.
    const old = this.open.get(path);
    if (old) closeSync(old.fd);
    const fd = openSync(path, 'r');
    const gen = ++this.gen;
    const persisted = {
      fd,
      gen,
      readInto(buf: Buffer, off: number, len: number): number {
        return readSync(fd, buf, 0, Math.min(len, buf.length), off);
      },
      readRange(off: number, len: number): Buffer {
        const b = Buffer.allocUnsafe(len);
        readSync(fd, b, 0, len, off);
        return b;
      },
      readAll(): { buf: Buffer; base: number } {
        const size = require_size(fd);
        const b = Buffer.allocUnsafe(size);
        let done = 0;
        while (done < size) {
          const n = readSync(fd, b, done, size - done, done);
          if (n <= 0) break;
          done += n;
        }
        return { buf: b.subarray(0, done), base: 0 };
      },
    };
    this.open.set(path, persisted);
    return persisted;
  }

  /** Closes the open cache files (after the last flush). */
  close(): void {
    for (const p of this.open.values()) closeSync(p.fd);
    this.open.clear();
  }

  /** Writes every dirty collection (serialised: one flush at a time). */
  flush(cache: ObjectCache): Promise<void> {
    this.writing = this.writing.then(() => this.flushNow(cache)).catch((e) => this.log('cache_write_failed', { error: (e as Error).message }));
    return this.writing;
  }

  private async flushNow(cache: ObjectCache): Promise<void> {
    for (const [id, c] of cache.collections) {
      if (!c.dirty) continue;
      c.dirty = false;
      const path = this.pathFor(id);
      const { parts, size, placed } = this.serialize(c);
      const header = headerFor(parts);
      const fileSize = header.length + size;
      const projected = this.totalBytes() - (this.sizes.get(path) ?? 0) + fileSize;
      if (projected > this.maxBytes) {
        if (!this.fullWarned.has(id)) this.log('cache_full', { collection: id, bytes: fileSize, maxBytes: this.maxBytes });
        this.fullWarned.add(id);
        continue;
      }
      this.fullWarned.delete(id);
      await writeFileAtomic(path, [header, ...parts]);
      this.sizes.set(path, fileSize);
      // The bytes now live in the file: re-point the entries that did not change meanwhile and drop their copies.
      const persisted = this.attach(path);
      const base = header.length;
      c.persisted = persisted;
      for (const pl of placed) {
        if (c.items.get(pl.key) !== pl.entry) continue;
        pl.entry.loc = { gen: persisted.gen, off: base + pl.off, len: pl.len };
        delete pl.entry.raw;
      }
    }
    if (cache.discoveryDirty) {
      cache.discoveryDirty = false;
      const data = encodeCacheFile(JSON.stringify({ discovery: Object.fromEntries(cache.discovery) }));
      await writeFileAtomic(this.discoveryPath(), data);
      this.sizes.set(this.discoveryPath(), data.length);
    }
  }
}
