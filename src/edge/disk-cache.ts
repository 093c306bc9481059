/**
 * Crash-safe on-disk copy of the hub's cache. Each collection is one file written as temp file → fsync → rename
 * → fsync(dir), so a crash leaves either the old or the new file. Every file starts with a header line carrying
 * the SHA-256 and length of its body; a torn or altered file fails the check and is ignored (never served).
 * The total size is bounded: a collection that would push the cache over `maxBytes` is not persisted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Collection, ObjectCache, type CollectionMeta, type DiscoveryEntry } from './object-cache.js';
import { scanList } from './list-scanner.js';

const MAGIC = 'COFFER-EDGE-CACHE v1';
const COMMA = Buffer.from(',');

export function encodeCacheFile(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const digest = createHash('sha256').update(b).digest('hex');
  return Buffer.concat([Buffer.from(`${MAGIC} sha256=${digest} bytes=${b.length}\n`), b]);
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

export async function writeFileAtomic(path: string, data: Buffer): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
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

const safe = (s: string) => s.replace(/[^a-z0-9._-]/gi, '_') || '_';

export interface DiskCacheLog {
  (event: string, detail: Record<string, unknown>): void;
}

export class DiskCache {
  private readonly sizes = new Map<string, number>();
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
      const buf = await fsp.readFile(p);
      const r = decodeCacheFile(buf);
      if (!r.ok) {
        rejected++;
        this.log('cache_file_rejected', { file: relative(this.dir, p), reason: r.reason });
        continue;
      }
      try {
        if (p === this.discoveryPath()) {
          const doc = JSON.parse(r.body.toString('utf8'));
          for (const [path, e] of Object.entries(doc.discovery as Record<string, DiscoveryEntry>)) cache.discovery.set(path, e);
        } else {
          // Items stay slices of the file's buffer: the loaded cache is one allocation, not 10,000 strings.
          const { envelope, items } = scanList(r.body);
          const meta = envelope.meta as CollectionMeta;
          if (!meta?.kind || !meta.resource) throw new Error('no collection meta');
          const component = relative(this.dir, p).split(sep)[0];
          const c = cache.collection(component, meta)!;
          for (const it of items) c.upsertEntry(c.entryFromBytes(r.body.subarray(it.start, it.end)));
          c.rv = String(envelope.rv ?? '');
          c.dirty = false;
        }
        this.sizes.set(p, buf.length);
        loaded++;
      } catch (e) {
        rejected++;
        this.log('cache_file_rejected', { file: relative(this.dir, p), reason: `bad JSON: ${(e as Error).message}` });
      }
    }
    return { loaded, rejected };
  }

  private serialize(c: Collection): Buffer {
    const parts: Buffer[] = [Buffer.from(`{"meta":${JSON.stringify(c.meta)},"rv":${JSON.stringify(c.rv)},"items":[`)];
    let first = true;
    for (const e of c.items.values()) {
      if (!first) parts.push(COMMA);
      first = false;
      parts.push(e.raw);
    }
    parts.push(Buffer.from(']}'));
    return Buffer.concat(parts);
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
      const data = encodeCacheFile(this.serialize(c));
      const projected = this.totalBytes() - (this.sizes.get(path) ?? 0) + data.length;
      if (projected > this.maxBytes) {
        if (!this.fullWarned.has(id)) this.log('cache_full', { collection: id, bytes: data.length, maxBytes: this.maxBytes });
        this.fullWarned.add(id);
        continue;
      }
      this.fullWarned.delete(id);
      await writeFileAtomic(path, data);
      this.sizes.set(path, data.length);
    }
    if (cache.discoveryDirty) {
      cache.discoveryDirty = false;
      const data = encodeCacheFile(JSON.stringify({ discovery: Object.fromEntries(cache.discovery) }));
      await writeFileAtomic(this.discoveryPath(), data);
      this.sizes.set(this.discoveryPath(), data.length);
    }
  }
}
