/**
 * The hub's in-memory view of what each client component has read, per resource: one Collection per
 * (component, group/version/resource). Items are kept as their list-item JSON text plus the few fields selectors
 * need, so a 10,000-pod offline LIST is string concatenation, and memory stays near the wire size.
 */
import { matchFields, matchLabels, selectableFields, type FieldSelector, type LabelSelector } from '../k8s/selectors.js';

type Obj = Record<string, any>;

export interface CacheEntry {
  namespace: string;
  name: string;
  rv: string;
  labels: Record<string, string> | undefined;
  fields: Record<string, string>;
  /**
   * The object's JSON (as a list item: no kind/apiVersion needed) while it is only in memory (from a watch event,
   * or a LIST on a hub without a disk cache). Entries indexed from a LIST body spooled to disk, or persisted in the
   * collection's cache file, have no `raw`: their bytes live in that file only (`loc`), so a node caching 10,000
   * pods keeps just the index in RAM.
   */
  raw?: Buffer;
  /** Where the bytes are: a byte range of a cache file or a spooled LIST body. */
  loc?: { file: PersistedItems; off: number; len: number };
}

/** Read access to a file holding item bytes (a persisted collection file or a spooled LIST body). */
export interface PersistedItems {
  /** Unique per open file, for telling files apart. */
  readonly id: number;
  readRange(off: number, len: number): Buffer;
  /** Reads up to `len` bytes at file offset `off` into `buf`; returns how many were read. */
  readInto(buf: Buffer, off: number, len: number): number;
  /** Keeps the file open while a response streams ranges of it; call the returned function when done. */
  pin(): () => void;
}

export interface CollectionMeta {
  group: string;
  version: string;
  resource: string;
  /** Item kind and apiVersion as the server reported them (e.g. Pod, v1). */
  kind: string;
  apiVersion: string;
  namespaced: boolean;
}

function rvNewer(a: string, b: string): boolean {
  // resourceVersions are opaque; the hub only needs "latest seen", and etcd-backed servers use integers.
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return a.length !== b.length ? a.length > b.length : a > b;
  return true;
}

export class Collection {
  readonly items = new Map<string, CacheEntry>();
  rv = '';
  private sorted: string[] | undefined;
  dirty = false;
  /** Digest of the last LIST body per scope, to skip re-indexing an identical relist. */
  readonly listDigests = new Map<string, string>();

  /** Keys changed by upsert/remove since a LIST answer ended, while that answer is being indexed (see track()). */
  private touchLog: Map<string, number> | undefined;
  private touchSeq = 0;
  private trackers = 0;

  /** Set by the disk cache once the collection has a file; entries with `loc` read their bytes through it. */
  persisted: PersistedItems | undefined;

  constructor(readonly meta: CollectionMeta) {}

  /** The bytes of one entry, from memory or from the file it lives in. */
  bytesOf(e: CacheEntry): Buffer {
    if (e.raw) return e.raw;
    if (!e.loc) throw new Error(`cache entry ${e.namespace}/${e.name} has no bytes`);
    return e.loc.file.readRange(e.loc.off, e.loc.len);
  }

  /**
   * An accessor for many entries read in file order: reads go through one 1 MiB window per file instead of one
   * read per entry, and never a buffer the size of the file.
   */
  bytesReader(): (e: CacheEntry) => Buffer {
    let win: { file: PersistedItems; off: number; buf: Buffer } | undefined;
    const WINDOW = 1024 * 1024;
    return (e) => {
      if (e.raw) return e.raw;
      if (!e.loc) throw new Error(`cache entry ${e.namespace}/${e.name} has no bytes`);
      const { file, off, len } = e.loc;
      if (len > WINDOW) return file.readRange(off, len);
      if (!win || win.file !== file || off < win.off || off + len > win.off + win.buf.length) {
        // A fresh window each time: slices handed out earlier stay valid.
        const buf = Buffer.allocUnsafe(WINDOW);
        const n = file.readInto(buf, off, WINDOW);
        win = { file, off, buf: buf.subarray(0, n) };
        if (n < len) throw new Error(`cache entry ${e.namespace}/${e.name}: short read`);
      }
      return win.buf.subarray(off - win.off, off - win.off + len);
    };
  }

  private seeRv(rv: string | undefined): void {
    if (rv && (this.rv === '' || rvNewer(rv, this.rv))) this.rv = rv;
  }

  entryOf(obj: Obj): CacheEntry {
    const { kind: _k, apiVersion: _a, ...rest } = obj;
    return this.indexOf(obj, Buffer.from(JSON.stringify(rest)));
  }

  /** An entry from an item's raw JSON bytes (as the server sent them), parsed only to index it. */
  entryFromBytes(raw: Buffer): CacheEntry {
    return this.indexOf(JSON.parse(raw.toString('utf8')) as Obj, raw);
  }

  /** The index fields of an object (every entry gets the same shape: raw and loc are set, never deleted). */
  private indexOf(obj: Obj, raw: Buffer): CacheEntry {
    const md = obj.metadata ?? {};
    return {
      namespace: md.namespace ?? '',
      name: md.name ?? '',
      rv: md.resourceVersion ?? '',
      labels: md.labels,
      fields: selectableFields(this.meta.kind, obj, this.meta.namespaced),
      raw,
      loc: undefined,
    };
  }

  keyOf(ns: string, name: string): string {
    return ns ? `${ns}/${name}` : name;
  }

  upsert(obj: Obj): void {
    this.upsertEntry(this.entryOf(obj));
  }

  /**
   * Starts recording which keys watch events (or GETs) change from now on: a LIST answer is indexed after it was
   * answered, and must not overwrite or delete what changed after its snapshot. Returns the mark for touchedSince.
   */
  track(): number {
    this.trackers++;
    this.touchLog ??= new Map();
    return this.touchSeq;
  }

  untrack(): void {
    if (--this.trackers <= 0) {
      this.trackers = 0;
      this.touchLog = undefined;
    }
  }

  touchedSince(mark: number): Set<string> {
    const out = new Set<string>();
    for (const [k, seq] of this.touchLog ?? []) if (seq > mark) out.add(k);
    return out;
  }

  private touch(k: string): void {
    this.touchLog?.set(k, ++this.touchSeq);
  }

  upsertEntry(e: CacheEntry): void {
    const k = this.keyOf(e.namespace, e.name);
    this.touch(k);
    if (!this.items.has(k)) this.sorted = undefined;
    this.items.set(k, e);
    this.seeRv(e.rv);
    this.dirty = true;
  }

  remove(obj: Obj): void {
    const md = obj.metadata ?? {};
    const k = this.keyOf(md.namespace ?? '', md.name ?? '');
    this.touch(k);
    if (this.items.delete(k)) this.sorted = undefined;
    this.seeRv(md.resourceVersion);
    this.dirty = true;
  }

  /** Records a watch BOOKMARK: no object changed, but the view is current up to `rv`. */
  bookmark(rv: string | undefined): void {
    this.seeRv(rv);
  }

  /**
   * A LIST answer replaces exactly the scope it covered (namespace + selectors): entries in that scope that the
   * server no longer returned are gone; entries outside it are untouched.
   */
  replaceScope(namespace: string | undefined, labels: LabelSelector, fields: FieldSelector, items: Obj[], listRv: string | undefined): void {
    this.replaceScopeEntries(namespace, labels, fields, items.map((it) => this.entryOf(it)), listRv);
  }

  /** `keep`: keys changed after the LIST's snapshot (see track()), left as they are. */
  replaceScopeEntries(namespace: string | undefined, labels: LabelSelector, fields: FieldSelector, entries: CacheEntry[], listRv: string | undefined, keep?: Set<string>): void {
    const fresh = new Map<string, CacheEntry>();
    for (const e of entries) {
      const k = this.keyOf(e.namespace, e.name);
      if (!keep?.has(k)) fresh.set(k, e);
    }
    for (const [k, e] of this.items) {
      if (fresh.has(k) || keep?.has(k)) continue;
      if (this.inScope(e, namespace, labels, fields)) {
        this.items.delete(k);
        this.sorted = undefined;
      }
    }
    for (const [k, e] of fresh) {
      if (!this.items.has(k)) this.sorted = undefined;
      this.items.set(k, e);
    }
    if (listRv && !(keep && keep.size > 0 && this.rv !== '' && rvNewer(this.rv, listRv))) this.rv = listRv;
    this.dirty = true;
  }

  /** Upserts a LIST page's entries, except keys changed after its snapshot. */
  upsertPage(entries: CacheEntry[], keep?: Set<string>): void {
    for (const e of entries) {
      const k = this.keyOf(e.namespace, e.name);
      if (keep?.has(k)) continue;
      if (!this.items.has(k)) this.sorted = undefined;
      this.items.set(k, e);
      this.seeRv(e.rv);
    }
    this.dirty = true;
  }

  inScope(e: CacheEntry, namespace: string | undefined, labels: LabelSelector, fields: FieldSelector): boolean {
    if (namespace !== undefined && e.namespace !== namespace) return false;
    return matchLabels(labels, e.labels) && matchFields(fields, e.fields);
  }

  /** Entries in key order (etcd's order, which clients see from a real server), filtered. */
  select(namespace: string | undefined, labels: LabelSelector, fields: FieldSelector, afterKey = ''): { key: string; entry: CacheEntry }[] {
    if (!this.sorted) this.sorted = [...this.items.keys()].sort();
    const out: { key: string; entry: CacheEntry }[] = [];
    for (const k of this.sorted) {
      if (afterKey && k <= afterKey) continue;
      const e = this.items.get(k)!;
      if (this.inScope(e, namespace, labels, fields)) out.push({ key: k, entry: e });
    }
    return out;
  }

  /** Like select, entries only: no wrapper object per entry (an offline LIST of 10,000 pods allocates less). */
  selectEntries(namespace: string | undefined, labels: LabelSelector, fields: FieldSelector, afterKey = ''): CacheEntry[] {
    if (!this.sorted) this.sorted = [...this.items.keys()].sort();
    const out: CacheEntry[] = [];
    for (const k of this.sorted) {
      if (afterKey && k <= afterKey) continue;
      const e = this.items.get(k)!;
      if (this.inScope(e, namespace, labels, fields)) out.push(e);
    }
    return out;
  }

  get(namespace: string | undefined, name: string): CacheEntry | undefined {
    return this.items.get(this.keyOf(namespace ?? '', name));
  }
}

export function collectionId(component: string, group: string, version: string, resource: string): string {
  return `${component}/${resource}.${version}.${group || 'core'}`;
}

/** Discovery documents (/api, /apis, /version ...) by path: the same for every component. */
export interface DiscoveryEntry {
  contentType: string;
  body: string;
}

export class ObjectCache {
  readonly collections = new Map<string, Collection>();
  readonly discovery = new Map<string, DiscoveryEntry>();
  discoveryDirty = false;

  collection(component: string, meta: CollectionMeta, create = true): Collection | undefined {
    const id = collectionId(component, meta.group, meta.version, meta.resource);
    let c = this.collections.get(id);
    if (!c && create) {
      c = new Collection(meta);
      this.collections.set(id, c);
    }
    return c;
  }

  find(component: string, group: string, version: string, resource: string): Collection | undefined {
    return this.collections.get(collectionId(component, group, version, resource));
  }

  setDiscovery(path: string, entry: DiscoveryEntry): void {
    const old = this.discovery.get(path);
    if (old && old.body === entry.body && old.contentType === entry.contentType) return;
    this.discovery.set(path, entry);
    this.discoveryDirty = true;
  }
}
