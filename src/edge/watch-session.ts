/**
 * One client WATCH through the hub: proxied line by line while online, held open (no events, optional BOOKMARKs
 * carrying the client's resourceVersion) while offline, ended when the link returns so the client re-watches.
 */
import type http from 'node:http';
import { apiVersionOf, findResource } from '../k8s/resources.js';
import type { IncludeObject } from '../k8s/table.js';
import type { Collection, CollectionMeta } from './object-cache.js';
import type { RequestClass } from './request-class.js';

/** What a session needs from the hub that owns it. */
export interface SessionHost {
  readonly sessions: Set<WatchSession>;
  readonly offlineBookmarkMs: number;
  collectionFor(rc: RequestClass): Collection | undefined;
}

/** The collection a request addresses: built-in kinds by name, others from what the server answered. */
export function collectionMeta(rc: RequestClass, sample?: { kind?: string; apiVersion?: string; namespaced?: boolean }): CollectionMeta | undefined {
  const api = rc.api!;
  const known = findResource(api.group, api.version, api.resource);
  if (known) return { group: known.group, version: known.version, resource: known.resource, kind: known.kind, apiVersion: apiVersionOf(known), namespaced: known.namespaced };
  if (!sample?.kind) return undefined;
  return {
    group: api.group,
    version: api.version,
    resource: api.resource,
    kind: sample.kind,
    apiVersion: sample.apiVersion ?? (api.group ? `${api.group}/${api.version}` : api.version),
    namespaced: sample.namespaced ?? api.namespace !== undefined,
  };
}

/** One client watch: proxied while online, held open (no events, optional bookmarks) while offline. */
export class WatchSession {
  mode: 'proxy' | 'held' = 'proxy';
  private upstreamReq: http.ClientRequest | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private ended = false;
  lastRv: string;

  constructor(
    private readonly hub: SessionHost,
    readonly res: http.ServerResponse,
    readonly rc: RequestClass,
    readonly table: boolean,
    readonly include: IncludeObject,
  ) {
    this.lastRv = rc.query.get('resourceVersion') ?? '';
    const ts = rc.query.get('timeoutSeconds');
    if (ts && /^\d+$/.test(ts)) this.timeoutTimer = setTimeout(() => this.end(), Number(ts) * 1000);
    res.on('close', () => this.end());
  }

  start(): void {
    if (!this.res.headersSent) {
      this.res.writeHead(200, { 'Content-Type': this.table ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
      this.res.flushHeaders();
    }
  }

  attach(req: http.ClientRequest): void {
    this.upstreamReq = req;
  }

  writeLine(line: string): void {
    if (!this.ended) this.res.write(line + '\n');
  }

  /** Switches to offline mode: drop the upstream stream (cleanly, between lines), keep the client waiting. */
  hold(): void {
    if (this.ended || this.mode === 'held') return;
    this.mode = 'held';
    this.upstreamReq?.destroy();
    this.upstreamReq = undefined;
    this.start();
    if (this.rc.query.get('allowWatchBookmarks') === 'true' && this.hub.offlineBookmarkMs > 0) {
      this.bookmarkTimer = setInterval(() => {
        const c = this.hub.collectionFor(this.rc);
        const rv = this.lastRv || c?.rv || '';
        if (!rv) return;
        const meta = c?.meta ?? collectionMeta(this.rc);
        this.writeLine(JSON.stringify({ type: 'BOOKMARK', object: { kind: meta?.kind, apiVersion: meta?.apiVersion, metadata: { resourceVersion: rv } } }));
      }, this.hub.offlineBookmarkMs);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.bookmarkTimer);
    clearTimeout(this.timeoutTimer);
    this.upstreamReq?.destroy();
    this.hub.sessions.delete(this);
    if (!this.res.writableEnded) this.res.end();
  }
}

