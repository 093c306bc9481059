/**
 * The object store behind the fake kube-apiserver: one global resourceVersion counter (like etcd's revision),
 * objects per resource keyed as etcd keys them (namespace/name), a bounded event history for watch resumption
 * (older resourceVersions are "compacted" and answer 410 Expired), and live watchers.
 */
import { randomUUID } from 'node:crypto';
import { apiVersionOf, type ResourceInfo } from '../../src/k8s/resources.js';

export type Obj = Record<string, any>;
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface HistoryEvent {
  rv: number;
  type: EventType;
  resId: string;
  key: string;
  obj: Obj; // state after the event (last state for DELETED)
  prev?: Obj; // state before (undefined for ADDED)
}

export interface Watcher {
  resId: string;
  namespace?: string;
  matches(obj: Obj): boolean;
  send(type: EventType, obj: Obj): void;
  /** Ends the watch stream (the client sees a clean end of the response, as on a server-side timeout). */
  close?(): void;
}

export function resId(r: { group: string; resource: string }): string {
  return `${r.group}/${r.resource}`;
}

export function objKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Item JSON without TypeMeta, as list responses carry it; cached per stored object. */
const itemJson = new WeakMap<Obj, string>();
export function listItemJson(o: Obj): string {
  let s = itemJson.get(o);
  if (s === undefined) {
    const { kind: _k, apiVersion: _a, ...rest } = o;
    s = JSON.stringify(rest);
    itemJson.set(o, s);
  }
  return s;
}

export class FakeStore {
  rv = 0;
  /** Highest resourceVersion no longer covered by the history: watches from at or below it are Expired. */
  compactedRv = 0;
  private readonly data = new Map<string, Map<string, Obj>>();
  private readonly sortedKeys = new Map<string, string[] | undefined>();
  private history: HistoryEvent[] = [];
  private readonly watchers = new Set<Watcher>();

  constructor(readonly historySize = 1000) {}

  collection(id: string): Map<string, Obj> {
    let c = this.data.get(id);
    if (!c) {
      c = new Map();
      this.data.set(id, c);
    }
    return c;
  }

  keys(id: string): string[] {
    let k = this.sortedKeys.get(id);
    if (!k) {
      k = [...this.collection(id).keys()].sort();
      this.sortedKeys.set(id, k);
    }
    return k;
  }

  get(id: string, key: string): Obj | undefined {
    return this.collection(id).get(key);
  }

  /** Writes (or deletes, obj=null) an object, stamping a fresh resourceVersion, recording history, notifying watchers. */
  write(info: ResourceInfo, key: string, obj: Obj | null): Obj {
    const id = resId(info);
    const c = this.collection(id);
    const prev = c.get(key);
    const rv = ++this.rv;
    let type: EventType;
    let stored: Obj;
    if (obj === null) {
      if (!prev) throw new Error(`delete of missing ${key}`);
      stored = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(rv) } };
      c.delete(key);
      this.sortedKeys.delete(id);
      type = 'DELETED';
    } else {
      stored = { ...obj, apiVersion: apiVersionOf(info), kind: info.kind, metadata: { ...obj.metadata, resourceVersion: String(rv) } };
      type = prev ? 'MODIFIED' : 'ADDED';
      if (!prev) this.sortedKeys.delete(id);
      c.set(key, stored);
    }
    const ev: HistoryEvent = { rv, type, resId: id, key, obj: stored };
    if (prev) ev.prev = prev;
    this.history.push(ev);
    if (this.history.length > this.historySize) {
      const drop = this.history.length - this.historySize;
      this.compactedRv = this.history[drop - 1].rv;
      this.history = this.history.slice(drop);
    }
    for (const w of this.watchers) this.deliver(w, ev);
    return stored;
  }

  /** Translates one event for one watcher: selector transitions become ADDED/DELETED like the watch cache does. */
  private deliver(w: Watcher, ev: HistoryEvent): void {
    if (w.resId !== ev.resId) return;
    if (w.namespace !== undefined && ev.obj.metadata?.namespace !== w.namespace) return;
    const cur = ev.type !== 'DELETED' && w.matches(ev.obj);
    const before = ev.prev !== undefined && w.matches(ev.prev);
    if (ev.type === 'DELETED') {
      if (before) w.send('DELETED', ev.obj);
    } else if (cur && before) w.send('MODIFIED', ev.obj);
    else if (cur) w.send('ADDED', ev.obj);
    else if (before) w.send('DELETED', ev.obj);
  }

  /** Events after `fromRv` for a watcher, or 'expired' when that part of the history is gone. */
  replay(w: Watcher, fromRv: number): 'expired' | 'ok' {
    if (fromRv < this.compactedRv) return 'expired';
    for (const ev of this.history) if (ev.rv > fromRv) this.deliver(w, ev);
    return 'ok';
  }

  subscribe(w: Watcher): () => void {
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /** Forgets all history up to now: any watch or exact list at an older resourceVersion gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** The collection as it was at `rv` (undoing newer events), or undefined when history no longer reaches back. */
  snapshotAt(id: string, rv: number): Map<string, Obj> | undefined {
    if (rv === this.rv) return this.collection(id);
    if (rv < this.compactedRv || rv > this.rv) return undefined;
    const snap = new Map(this.collection(id));
    for (let i = this.history.length - 1; i >= 0 && this.history[i].rv > rv; i--) {
      const ev = this.history[i];
      if (ev.resId !== id) continue;
      if (ev.prev) snap.set(ev.key, ev.prev);
      else snap.delete(ev.key);
    }
    return snap;
  }

  /** Ends every open watch, as a restarting apiserver or watch timeouts would; clients re-watch from their resourceVersion. */
  dropWatchers(): void {
    for (const w of [...this.watchers]) w.close?.();
  }

  watcherCount(): number {
    return this.watchers.size;
  }
}

export function newObjectMeta(meta: Obj, namespace: string | undefined): Obj {
  const m: Obj = { ...meta, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
  if (namespace !== undefined) m.namespace = namespace;
  delete m.resourceVersion;
  return m;
}
