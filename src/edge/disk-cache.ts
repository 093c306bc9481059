/**
 * Crash-safe on-disk copy of the hub's cache. Each collection is one file written as temp file → fsync → rename
 * → fsync(dir), so a crash leaves either the old or the new file. Every file starts with a header line carrying
 * the SHA-256 and length of its body; a torn or altered file fails the check and is ignored (never served).
 * The total size is bounded: a collection that would push the cache over `maxBytes` is not persisted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, promises as fsp, readSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Collection, ObjectCache, type CacheEntry, type CollectionMeta, type DiscoveryEntry, type PersistedItems } from './object-cache.js';
import { ItemStreamScanner } from './list-scanner.js';
import { FileSpool, StoredFile } from './stored-file.js';

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

const safe = (s: string) => s.replace(/[^a-z0-9._-]/gi, '_') || '_';

export interface DiskCacheLog {
  (event: string, detail: Record<string, unknown>): void;
}

export class DiskCache {
  private readonly sizes = new Map<string, number>();
  /** Open descriptors on the file generation each collection's entries point into. */
  private readonly open = new Map<string, StoredFile>();
  /** Spooled LIST bodies that cache entries point into, until a flush has copied them into collection files. */
  private readonly spools = new Set<StoredFile>();
  /** One long-lived copy buffer for loads and flushes (a fresh 1 MiB buffer each time would leave malloc hoarding). */
  private readonly copyBuf = Buffer.allocUnsafe(1024 * 1024);
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
    const file = new StoredFile(openSync(p, 'r'));
    const fd = file.fd;
    let meta: CollectionMeta | undefined;
    let ok = false;
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
        if (probe) entries.push(indexed(probe, file, bytes, base + off));
        else pending.push({ bytes, off });
      });
      const chunk = this.copyBuf;
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
            for (const x of pending.splice(0)) entries.push(indexed(probe, file, x.bytes, base + x.off));
          }
        }
        pos += n;
      }
      if (hash.digest('hex') !== m[1]) throw new RejectedFile('checksum mismatch');
      const envelope = scanner.finish();
      meta = envelope.meta as CollectionMeta;
      if (!meta?.kind || !meta.resource) throw new RejectedFile('no collection meta');
      probe ??= new Collection(meta);
      for (const x of pending) entries.push(indexed(probe, file, x.bytes, base + x.off));
      const component = relative(this.dir, p).split(sep)[0];
      const c = cache.collection(component, meta)!;
      const persisted = this.attach(p);
      for (const e of entries) {
        e.loc = { file: persisted, off: e.loc!.off, len: e.loc!.len };
        c.upsertEntry(e);
      }
      c.persisted = persisted;
      c.rv = String(envelope.rv ?? '');
      c.dirty = false;
      this.sizes.set(p, size);
      ok = true;
    } finally {
      if (!ok) file.retire();
    }
  }

  /**
   * Writes a collection file without ever holding it whole: items stream from memory or from the files they live
   * in (adjacent items of one file in a single read) through one reusable buffer, hashed on the way, to a temp
   * file; the header, whose length is known in advance, goes in front last; then fsync and rename.
   */
  private async writeCollectionFile(path: string, plan: FilePlan): Promise<void> {
    const files = new Set<PersistedItems>();
    for (const { entry: e } of plan.entries) if (!e.raw && e.loc) files.add(e.loc.file);
    const unpin = [...files].map((f) => f.pin());
    await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    const buf = this.copyBuf;
    const hash = createHash('sha256');
    let fill = 0;
    let pos = plan.headerLength;
    const drain = async () => {
      if (fill === 0) return;
      hash.update(buf.subarray(0, fill));
      let done = 0;
      while (done < fill) done += (await fh.write(buf, done, fill - done, pos + done)).bytesWritten;
      pos += fill;
      fill = 0;
    };
    const put = async (b: Buffer) => {
      if (fill + b.length > buf.length) await drain();
      if (b.length > buf.length) {
        hash.update(b);
        let done = 0;
        while (done < b.length) done += (await fh.write(b, done, b.length - done, pos + done)).bytesWritten;
        pos += b.length;
      } else fill += b.copy(buf, fill);
    };
    const copyRange = async (file: PersistedItems, off: number, len: number) => {
      while (len > 0) {
        if (fill === buf.length) await drain();
        const n = file.readInto(buf.subarray(fill), off, Math.min(len, buf.length - fill));
        if (n <= 0) throw new Error('short read from a cache file');
        fill += n;
        off += n;
        len -= n;
      }
    };
    try {
      await put(plan.head);
      const es = plan.entries;
      for (let i = 0; i < es.length; ) {
        if (i > 0) await put(COMMA);
        const e = es[i].entry;
        if (e.raw || !e.loc) {
          await put(e.raw!);
          i++;
          continue;
        }
        // A run of entries adjacent in one file (one comma apart) is copied with the commas in one go.
        const { file, off } = e.loc;
        let end = off + e.loc.len;
        let j = i + 1;
        for (; j < es.length; j++) {
          const l = es[j].entry.loc;
          if (es[j].entry.raw || !l || l.file !== file || l.off !== end + 1) break;
          end = l.off + l.len;
        }
        await copyRange(file, off, end - off);
        i = j;
      }
      await put(Buffer.from(']}'));
      await drain();
      if (pos !== plan.headerLength + plan.size) throw new Error(`collection file size ${pos - plan.headerLength} != planned ${plan.size}`);
      const header = Buffer.from(`${MAGIC} sha256=${hash.digest('hex')} bytes=${plan.size}\n`);
      await fh.write(header, 0, header.length, 0);
      await fh.sync();
    } catch (e) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw e;
    } finally {
      for (const u of unpin) u();
    }
    await fh.close();
    await fsp.rename(tmp, path);
    const dh = await fsp.open(dirname(path), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  /** Opens the file just written (or loaded) as the collection's current file; the previous one is retired. */
  private attach(path: string): StoredFile {
    // Callers re-point every unchanged entry synchronously right after; readers still streaming the previous
    // generation have it pinned, so it closes when they are done.
    this.open.get(path)?.retire();
    const f = new StoredFile(openSync(path, 'r'));
    this.open.set(path, f);
    return f;
  }

  /** A spool for a LIST body being proxied: an anonymous file in the cache directory. */
  createSpool(): FileSpool {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return new FileSpool(this.dir);
  }

  /** Entries now point into this spool: keep it until a flush has copied them into the collection file. */
  adoptSpool(f: StoredFile): void {
    this.spools.add(f);
  }

  /** Retires spools no entry points into any more. */
  private collectSpools(cache: ObjectCache): void {
    if (this.spools.size === 0) return;
    const used = new Set<PersistedItems>();
    for (const c of cache.collections.values()) for (const e of c.items.values()) if (e.loc) used.add(e.loc.file);
    for (const f of this.spools) {
      if (!used.has(f)) {
        this.spools.delete(f);
        f.retire();
      }
    }
  }

  /** Closes the open cache files (after the last flush). */
  close(): void {
    for (const p of this.open.values()) p.retire();
    this.open.clear();
    for (const f of this.spools) f.retire();
    this.spools.clear();
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
      const plan = planCollectionFile(c);
      const fileSize = plan.headerLength + plan.size;
      const projected = this.totalBytes() - (this.sizes.get(path) ?? 0) + fileSize;
      if (projected > this.maxBytes) {
        if (!this.fullWarned.has(id)) this.log('cache_full', { collection: id, bytes: fileSize, maxBytes: this.maxBytes });
        this.fullWarned.add(id);
        continue;
      }
      this.fullWarned.delete(id);
      await this.writeCollectionFile(path, plan);
      this.sizes.set(path, fileSize);
      // The bytes now live in the file: re-point the entries that did not change meanwhile and drop their copies.
      const persisted = this.attach(path);
      c.persisted = persisted;
      for (const pl of plan.placed) {
        if (c.items.get(pl.key) !== pl.entry) continue;
        pl.entry.loc = { file: persisted, off: plan.headerLength + pl.off, len: pl.entry.raw ? pl.entry.raw.length : pl.entry.loc!.len };
        pl.entry.raw = undefined;
      }
    }
    this.collectSpools(cache);
    if (cache.discoveryDirty) {
      cache.discoveryDirty = false;
      const data = encodeCacheFile(JSON.stringify({ discovery: Object.fromEntries(cache.discovery) }));
      await writeFileAtomic(this.discoveryPath(), data);
      this.sizes.set(this.discoveryPath(), data.length);
    }
  }
}

interface FilePlan {
  head: Buffer;
  entries: { key: string; entry: CacheEntry }[];
  /** Body size and the length of the header line (fixed: only the digest is unknown until written). */
  size: number;
  headerLength: number;
  placed: { key: string; entry: CacheEntry; off: number }[];
}

/** Where each entry's bytes will land in the collection's new file (offsets relative to the body). */
function planCollectionFile(c: Collection): FilePlan {
  const head = Buffer.from(`{"meta":${JSON.stringify(c.meta)},"rv":${JSON.stringify(c.rv)},"items":[`);
  // Key order (the order LISTs are served in), so a LIST reads long contiguous runs of the file.
  const entries = c.select(undefined, [], []);
  let pos = head.length;
  const placed: FilePlan['placed'] = [];
  for (let i = 0; i < entries.length; i++) {
    if (i > 0) pos += 1;
    const { key, entry } = entries[i];
    placed.push({ key, entry, off: pos });
    pos += entry.raw ? entry.raw.length : entry.loc!.len;
  }
  const size = pos + 2;
  return { head, entries, size, headerLength: Buffer.byteLength(`${MAGIC} sha256=${'0'.repeat(64)} bytes=${size}\n`), placed };
}

function indexed(c: Collection, file: StoredFile, bytes: Buffer, off: number): CacheEntry {
  const e = c.entryFromBytes(bytes);
  e.raw = undefined;
  e.loc = { file, off, len: bytes.length };
  return e;
}
