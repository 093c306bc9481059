/**
 * The edge hub: a reverse proxy on the node between the kubelet (and other node clients) and the cloud
 * kube-apiserver. Online it forwards everything and keeps a cache of what allow-listed components read (LIST/GET
 * bodies, WATCH events); offline it answers reads from that cache, holds watches open until the link returns,
 * refuses writes with a 503 Status, and accepts only the kubelet's own node-status and lease updates locally
 * (answered, never replayed). See README "Edge hub".
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { failureStatus } from '../k8s/status.js';
import { parseFieldSelector, parseLabelSelector, SelectorError, type FieldSelector, type LabelSelector } from '../k8s/selectors.js';
import { toTable, wantsTable, type IncludeObject } from '../k8s/table.js';
import { classifyRequest, DEFAULT_CACHE_AGENTS, type RequestClass } from './request-class.js';
import { LinkStateMachine, type LinkState } from './link-state.js';
import { Collection, ObjectCache, type CacheEntry, type CollectionMeta } from './object-cache.js';
import { DiskCache } from './disk-cache.js';
import { autonomousWriteRefused, buildList, notCachedStatus, objectJson } from './offline-responses.js';
import { ItemStreamScanner, scanList } from './list-scanner.js';
import { MemorySpool, type ListSpool } from './stored-file.js';
import { ReclaimEvery, reclaimYoung, Settler } from './reclaim.js';
import type { Upstream } from './upstream.js';
import { HOP_BY_HOP, ReadBufferPool, sendBody, sendParts, sendStatus } from './http-util.js';
import { collectionMeta, WatchSession, type SessionHost } from './watch-session.js';
import { acceptLocalWrite } from './local-writes.js';

type Obj = Record<string, any>;

export interface EdgeHubOptions {
  upstream: Upstream;
  host?: string;
  port?: number;
  /** Directory of the crash-safe disk cache; without it the cache lives in memory only. */
  cacheDir?: string;
  maxCacheBytes?: number;
  healthIntervalMs?: number;
  probeTimeoutMs?: number;
  /** Whole-request deadline for clients of the hub (default 30 s): slow request bodies are cut. */
  requestTimeoutMs?: number;
  failureThreshold?: number;
  cacheAgents?: string[];
  /** This node's name: only its own node status and Lease are answered locally while offline. */
  nodeName?: string;
  /** Interval of BOOKMARKs on watches held open while offline (for clients that asked for bookmarks). */
  offlineBookmarkMs?: number;
  flushDelayMs?: number;
  log?: (event: string, detail: Record<string, unknown>) => void;
  now?: () => number;
}

interface Selectors {
  labels: LabelSelector;
  fields: FieldSelector;
}

export class EdgeHub implements SessionHost {
  readonly cache = new ObjectCache();
  readonly disk: DiskCache | undefined;
  readonly link: LinkStateMachine;
  readonly sessions = new Set<WatchSession>();
  readonly offlineBookmarkMs: number;
  private readonly agents: Set<string>;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private probeTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly log: NonNullable<EdgeHubOptions['log']>;
  private readonly now: () => number;
  private stopped = false;
  private probing = false;
  /** LIST bodies are indexed one at a time, in the order they were answered (older answers first). */
  private indexing: Promise<void> = Promise.resolve();
  /** One read buffer for indexing spooled LIST bodies. */
  private readonly indexBuf = Buffer.allocUnsafe(256 * 1024);
  private readonly readBuffers = new ReadBufferPool();
  private readonly settler = new Settler();

  constructor(private readonly opts: EdgeHubOptions) {
    this.agents = new Set((opts.cacheAgents ?? DEFAULT_CACHE_AGENTS).map((a) => a.toLowerCase()));
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.link = new LinkStateMachine(opts.failureThreshold ?? 3, 'offline', this.now());
    this.offlineBookmarkMs = opts.offlineBookmarkMs ?? 10_000;
    if (opts.cacheDir) this.disk = new DiskCache(opts.cacheDir, opts.maxCacheBytes ?? 256 * 1024 * 1024, this.log);
  }

  get state(): LinkState {
    return this.link.state;
  }

  /** Loads the disk cache, probes the server once, then listens. Starts offline if the server is unreachable. */
  async start(): Promise<{ url: string; port: number }> {
    if (this.disk) {
      const r = await this.disk.load(this.cache);
      this.log('cache_loaded', { ...r, dir: this.disk.dir });
    }
    await this.probe();
    // A larger write buffer lets a proxied 17 MiB LIST stream without a pause/drain round trip every 16 KiB.
    // Request headers within 10 s and a whole request (a local write's body) within 30 s: slow-loris senders are cut.
    // Responses (long WATCH streams) are not bounded by these.
    const server = http.createServer({ highWaterMark: 1024 * 1024, connectionsCheckingInterval: 1_000, headersTimeout: Math.min(10_000, this.opts.requestTimeoutMs ?? 30_000), requestTimeout: this.opts.requestTimeoutMs ?? 30_000 }, (req, res) => this.handle(req, res));
    server.keepAliveTimeout = 65_000;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 10261, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const interval = this.opts.healthIntervalMs ?? 10_000;
    this.probeTimer = setInterval(() => void this.probe(), interval);
    const port = (server.address() as AddressInfo).port;
    return { url: `http://${this.opts.host ?? '127.0.0.1'}:${port}`, port };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.probeTimer);
    this.settler.stop();
    clearTimeout(this.flushTimer);
    for (const s of [...this.sessions]) s.end();
    if (this.server) {
      const closed = new Promise<void>((r) => this.server!.close(() => r()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
    await this.indexing;
    if (this.disk) {
      await this.disk.flush(this.cache);
      this.disk.close();
    }
    this.opts.upstream.agent.destroy();
  }

  /** One health probe: GET /readyz with a timeout; the outcome drives the link state machine. */
  async probe(): Promise<boolean> {
    if (this.probing) return this.link.state === 'online';
    this.probing = true;
    const ok = await new Promise<boolean>((resolve) => {
      const up = this.opts.upstream;
      const timeout = this.opts.probeTimeoutMs ?? 2_000;
      const req = up.request({
        protocol: up.url.protocol,
        hostname: up.url.hostname,
        port: up.url.port,
        path: `${up.url.pathname.replace(/\/$/, '')}/readyz`,
        method: 'GET',
        // A dedicated short-lived connection: a stopped server must not park the probe behind pooled sockets.
        agent: false,
        ...(up.url.protocol === 'https:' ? agentTlsOptions(up.agent) : {}),
        headers: { ...up.headers, 'user-agent': 'coffer-edgehub/healthcheck' },
        timeout,
      });
      const timer = setTimeout(() => req.destroy(new Error('probe timeout')), timeout);
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => {
          clearTimeout(timer);
          resolve(r.statusCode === 200);
        });
        r.on('error', () => resolve(false));
      });
      req.on('timeout', () => req.destroy(new Error('probe timeout')));
      req.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      req.end();
    });
    this.probing = false;
    if (this.stopped) return ok;
    const t = this.link.observe(ok, this.now());
    if (t.changed) this.onTransition(t.state);
    return ok;
  }

  private onTransition(state: LinkState): void {
    this.log('link_state', { state, at: new Date(this.now()).toISOString() });
    if (state === 'offline') {
      // Pooled sockets to a dead or frozen server would stall the first requests after recovery.
      this.opts.upstream.agent.destroy();
      for (const s of this.sessions) s.hold();
    } else {
      // Held watches end now so clients re-watch (from their resourceVersion) against the live server.
      for (const s of [...this.sessions]) if (s.mode === 'held') s.end();
    }
  }

  collectionFor(rc: RequestClass): Collection | undefined {
    const a = rc.api!;
    return this.cache.find(rc.component, a.group, a.version, a.resource);
  }

  private scheduleFlush(): void {
    if (!this.disk || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.disk!.flush(this.cache);
    }, this.opts.flushDelayMs ?? 200);
  }

  /** Waits for pending indexing and disk writes (tests, shutdown). */
  async flush(): Promise<void> {
    await this.indexing;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.disk) await this.disk.flush(this.cache);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let rc: RequestClass;
    try {
      rc = classifyRequest(req.method ?? 'GET', req.url ?? '/', req.headers['user-agent'], this.agents);
    } catch {
      return sendStatus(res, failureStatus('BadRequest', 'malformed request URL'));
    }
    if (req.url === '/_coffer/edgehub/status' && req.method === 'GET') {
      const m = process.memoryUsage();
      const memory = { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
      return sendBody(res, 200, JSON.stringify({ state: this.link.state, since: new Date(this.link.changedAt).toISOString(), collections: [...this.cache.collections].map(([id, c]) => ({ id, items: c.items.size, resourceVersion: c.rv })), memory }), 'application/json');
    }
    if (this.link.state === 'offline') return this.serveOffline(req, res, rc);
    this.proxy(req, res, rc);
  }

  // ---------------------------------------------------------------- online

  private proxy(req: http.IncomingMessage, res: http.ServerResponse, rc: RequestClass): void {
    const up = this.opts.upstream;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    Object.assign(headers, up.headers);
    headers.host = up.url.host;
    const readVerb = rc.verb === 'list' || rc.verb === 'get' || rc.verb === 'watch';
    const table = rc.cacheable && readVerb && wantsTable(req.headers.accept);
    if (rc.cacheable) {
      // The hub must read what it caches: plain JSON, uncompressed; it renders Tables itself (online and offline alike).
      delete headers['accept-encoding'];
      if (table) headers.accept = 'application/json';
    }
    const base = up.url.pathname.replace(/\/$/, '');
    const upReq = up.request({ protocol: up.url.protocol, hostname: up.url.hostname, port: up.url.port, path: base + (req.url ?? '/'), method: req.method, headers, agent: up.agent });
    let session: WatchSession | undefined;
    upReq.on('error', (err) => {
      if (session) {
        // Link broke mid-watch: keep the client's stream open as if nothing happened; the probe decides the rest.
        session.hold();
        void this.probe();
        return;
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.log('upstream_error', { method: req.method, url: req.url, error: err.message });
      void this.probe();
      if (rc.cacheable && readVerb) return this.serveOffline(req, res, rc);
      if (rc.discovery) return this.serveOffline(req, res, rc);
      sendStatus(res, failureStatus('ServiceUnavailable', `the edge hub could not reach the API server: ${err.message}`, { retryAfterSeconds: 5 }));
    });
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    upReq.on('response', (upRes) => {
      const status = upRes.statusCode ?? 502;
      if (rc.cacheable && rc.verb === 'watch' && status === 200) {
        session = new WatchSession(this, res, rc, table, (rc.query.get('includeObject') as IncludeObject) ?? 'Metadata');
        session.attach(upReq);
        this.sessions.add(session);
        session.start();
        this.pumpWatch(session, upRes);
        return;
      }
      if (rc.cacheable && status === 200 && rc.verb === 'list' && !table) return this.streamList(rc, upRes, res);
      if (rc.cacheable && status === 200 && (rc.verb === 'list' || rc.verb === 'get' || rc.discovery)) {
        return this.teeAndCache(rc, upRes, res, table, new URL(req.url ?? '/', 'http://hub').pathname);
      }
      if (rc.cacheable && rc.verb === 'get' && status === 404) {
        const c = this.collectionFor(rc);
        if (c && rc.api?.name) {
          c.remove({ metadata: { namespace: rc.api.namespace, name: rc.api.name } });
          this.scheduleFlush();
        }
      }
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) outHeaders[k] = v;
      res.writeHead(status, outHeaders);
      if (rc.verb === 'watch') res.flushHeaders();
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    req.pipe(upReq);
  }

  /**
   * Forwards a LIST answer chunk by chunk as it arrives (the client's latency includes no caching work) while the
   * same chunks go to a spool (an anonymous file in the cache directory, or memory without one). Once the client
   * has its answer, the spooled body is read back in small steps and indexed (entries point into the spool file,
   * so the body is never held in RAM); a body cut short, a client gone mid-stream or JSON that does not close
   * leaves the cache untouched.
   */
  private streamList(rc: RequestClass, upRes: http.IncomingMessage, res: http.ServerResponse): void {
    // A LIST served at the same resourceVersion for the same scope is the same snapshot: answers are identified by
    // (resourceVersion, size). When the first bytes already show the resourceVersion the cache holds for this
    // scope, the body is not kept at all (an unchanged relist of 10,000 pods costs the hub nothing).
    const scope = listScope(rc);
    const previous = this.collectionFor(rc)?.listDigests.get(scope);
    let spool: ListSpool | undefined;
    let head: string | undefined;
    let bytes = 0;
    let complete = false;
    const reclaim = new ReclaimEvery(RECLAIM_BYTES);
    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) outHeaders[k] = v;
    res.writeHead(200, outHeaders);
    const drop = () => {
      spool?.discard();
      spool = undefined;
    };
    upRes.on('data', (c: Buffer) => {
      if (head === undefined) {
        head = c.toString('latin1', 0, Math.min(c.length, 4096));
        const rv = listRvOf(head);
        if (!(previous !== undefined && rv !== undefined && previous.startsWith(`${rv}|`))) {
          try {
            spool = this.disk ? this.disk.createSpool() : new MemorySpool();
          } catch (e) {
            this.log('cache_update_failed', { resource: rc.api?.resource, error: `spool: ${(e as Error).message}` });
          }
        }
      }
      spool?.append(c);
      bytes += c.length;
      reclaim.add(c.length);
      // Backpressure: a slow client slows the upstream read instead of growing the hub's buffers.
      if (!res.write(c)) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
    });
    // Upstream cut mid-body ('aborted'/'error', no 'end'): the client's answer is torn too, and nothing is cached.
    upRes.on('aborted', drop);
    upRes.on('error', () => {
      drop();
      res.destroy();
    });
    res.on('close', () => {
      if (!complete) drop();
    });
    upRes.on('end', () => {
      complete = true;
      res.end(() => (reclaimYoung(), this.settler.soon())); // the answer's last socket Buffers, once the client has them
      const s = spool;
      if (!s) return; // same snapshot as cached (a size mismatch at the same resourceVersion is left to the next relist)
      const rv = listRvOf(head ?? '');
      const digest = rv !== undefined ? `${rv}|${bytes}` : `unknown|${Date.now()}|${Math.random()}`;
      // From here the client may start its WATCH: what that changes before the index is in must survive it.
      const before = this.collectionFor(rc);
      const mark = before?.track();
      this.indexing = this.indexing.then(() => this.indexList(rc, s, digest, before, mark)).finally(() => before?.untrack());
    });
  }

  /** Reads a spooled LIST body back in steps (yielding between them), indexes its items and folds them in. */
  private async indexList(rc: RequestClass, spool: ListSpool, digest: string, before: Collection | undefined, mark: number | undefined): Promise<void> {
    let adopted = false;
    try {
      if (this.stopped) return;
      const scope = listScope(rc);
      if (this.collectionFor(rc)?.listDigests.get(scope) === digest) return;
      await spool.done();
      let probe: Collection | undefined;
      const pending: { bytes: Buffer; off: number }[] = [];
      const entries: CacheEntry[] = [];
      const index = (c: Collection, bytes: Buffer, off: number) => {
        const e = c.entryFromBytes(bytes);
        if (spool.file) {
          e.raw = undefined;
          e.loc = { file: spool.file, off, len: bytes.length };
        }
        entries.push(e);
      };
      const metaOf = (envelope: Record<string, any> | undefined): CollectionMeta | undefined =>
        envelope?.kind ? collectionMeta(rc, { kind: String(envelope.kind).replace(/List$/, ''), apiVersion: envelope.apiVersion }) : undefined;
      const scanner = new ItemStreamScanner((bytes, off) => {
        if (probe) index(probe, bytes, off);
        else pending.push({ bytes, off });
      });
      const buf = this.indexBuf;
      for (let pos = 0; pos < spool.size; ) {
        const n = spool.readInto(buf, pos, Math.min(buf.length, spool.size - pos));
        if (n <= 0) throw new Error('short read from the LIST spool');
        scanner.feed(buf.subarray(0, n), pos);
        pos += n;
        // Servers write kind/apiVersion before items: from then on items are indexed as they close.
        if (!probe) {
          const m = metaOf(scanner.headFields());
          if (m) {
            probe = new Collection(m);
            for (const x of pending.splice(0)) index(probe, x.bytes, x.off);
          }
        }
        reclaimYoung(); // the parse garbage of this step, and the socket Buffers of the answer
        await new Promise<void>((r) => setImmediate(r));
        if (this.stopped) return;
      }
      const envelope = scanner.finish();
      const meta = metaOf(envelope);
      if (!meta) return;
      probe ??= new Collection(meta);
      for (const x of pending) index(probe, x.bytes, x.off);
      const c = this.cache.collection(rc.component, meta)!;
      // Keys changed since the answer ended; a collection that did not exist then holds only such changes.
      const keep = c === before && mark !== undefined ? c.touchedSince(mark) : before === undefined ? new Set(c.items.keys()) : undefined;
      const listRv: string | undefined = envelope.metadata?.resourceVersion;
      if (rc.query.get('limit') || rc.query.get('continue')) {
        // A page is not the whole scope: upsert only (a later full list or the watch removes deletions).
        c.upsertPage(entries, keep);
        c.bookmark(listRv);
      } else {
        const sel = this.selectors(rc);
        c.replaceScopeEntries(rc.api!.namespace, sel.labels, sel.fields, entries, listRv, keep);
      }
      c.listDigests.set(scope, digest);
      reclaimYoung();
      this.settler.soon();
      if (spool.file && this.disk) {
        this.disk.adoptSpool(spool.file);
        adopted = true;
      }
      this.scheduleFlush();
    } catch (e) {
      this.log('cache_update_failed', { resource: rc.api?.resource, error: (e as Error).message });
    } finally {
      if (!adopted) spool.discard();
    }
  }

  /** Forwards a LIST/GET/discovery answer as it streams while keeping a copy, then folds it into the cache. */
  private teeAndCache(rc: RequestClass, upRes: http.IncomingMessage, res: http.ServerResponse, table: boolean, path: string): void {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let head: string | undefined;
    // A LIST served at the same resourceVersion for the same scope is the same snapshot: answers are identified by
    // (resourceVersion, size). When the first bytes already show the resourceVersion the cache holds for this
    // scope, the body is not kept at all (an unchanged relist of 10,000 pods costs the hub no memory).
    const scope = rc.verb === 'list' ? listScope(rc) : '';
    const previous = rc.verb === 'list' ? this.collectionFor(rc)?.listDigests.get(scope) : undefined;
    let retain = true;
    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) outHeaders[k] = v;
    if (!table) res.writeHead(200, outHeaders);
    upRes.on('data', (c: Buffer) => {
      if (head === undefined) {
        head = c.toString('latin1', 0, Math.min(c.length, 4096));
        const rv = listRvOf(head);
        if (!table && previous !== undefined && rv !== undefined && previous.startsWith(`${rv}|`)) retain = false;
      }
      if (retain) chunks.push(c);
      bytes += c.length;
      // Backpressure: a slow client slows the upstream read instead of growing the hub's buffers.
      if (!table && !res.write(c)) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('error', () => res.destroy());
    upRes.on('end', () => {
      const rv = listRvOf(head ?? '');
      const digest = rv !== undefined ? `${rv}|${bytes}` : `unknown|${Date.now()}|${Math.random()}`;
      if (!retain) {
        res.end();
        return; // same snapshot as cached (a size mismatch at the same resourceVersion is left to the next relist)
      }
      if (table) {
        try {
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const include = (rc.query.get('includeObject') as IncludeObject) ?? 'Metadata';
          const kind = rc.verb === 'list' ? String(doc.kind ?? '').replace(/List$/, '') : doc.kind;
          const items = rc.verb === 'list' ? (doc.items ?? []).map((i: Obj) => ({ kind, apiVersion: doc.apiVersion, ...i })) : [doc];
          const meta = { ...(doc.metadata?.resourceVersion !== undefined ? { resourceVersion: doc.metadata.resourceVersion } : {}), ...(doc.metadata?.continue ? { continue: doc.metadata.continue } : {}) };
          sendBody(res, 200, JSON.stringify(toTable(kind, items, meta, include, this.now())), 'application/json;as=Table;v=v1;g=meta.k8s.io');
        } catch (e) {
          sendStatus(res, failureStatus('InternalError', `edge hub could not render a Table: ${(e as Error).message}`));
          return;
        }
      } else res.end();
      // Index after the client has its answer, off the request's critical path.
      setImmediate(() => this.absorb(rc, chunks, digest, String(upRes.headers['content-type'] ?? 'application/json'), path));
    });
  }

  private absorb(rc: RequestClass, chunks: Buffer[], digest: string, contentType: string, path: string): void {
    try {
      if (rc.discovery) {
        this.cache.setDiscovery(path, { contentType, body: Buffer.concat(chunks).toString('utf8') });
        this.scheduleFlush();
        return;
      }
      const api = rc.api!;
      if (rc.verb === 'list') {
        const scope = listScope(rc);
        const c0 = this.collectionFor(rc);
        if (c0 && c0.listDigests.get(scope) === digest) return;
        const body = Buffer.concat(chunks);
        const { envelope, items } = scanList(body);
        const meta = collectionMeta(rc, { kind: String(envelope.kind ?? '').replace(/List$/, ''), apiVersion: envelope.apiVersion });
        if (!meta) return;
        const c = this.cache.collection(rc.component, meta)!;
        const entries = items.map((r) => c.entryFromBytes(body.subarray(r.start, r.end)));
        const listRv: string | undefined = envelope.metadata?.resourceVersion;
        if (rc.query.get('limit') || rc.query.get('continue')) {
          // A page is not the whole scope: upsert only (a later full list or the watch removes deletions).
          for (const e of entries) c.upsertEntry(e);
          c.bookmark(listRv);
        } else {
          const sel = this.selectors(rc);
          c.replaceScopeEntries(api.namespace, sel.labels, sel.fields, entries, listRv);
        }
        c.listDigests.set(scope, digest);
      } else {
        const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const meta = collectionMeta(rc, { kind: doc.kind, apiVersion: doc.apiVersion, namespaced: doc.metadata?.namespace !== undefined });
        if (!meta) return;
        this.cache.collection(rc.component, meta)!.upsert(doc);
      }
      this.scheduleFlush();
    } catch (e) {
      this.log('cache_update_failed', { resource: rc.api?.resource ?? 'discovery', error: (e as Error).message });
    }
  }

  private selectors(rc: RequestClass): Selectors {
    const fields = parseFieldSelector(rc.query.get('fieldSelector'));
    if (rc.verb === 'watch' && rc.api?.name) fields.push({ field: 'metadata.name', op: '=', value: rc.api.name });
    return { labels: parseLabelSelector(rc.query.get('labelSelector')), fields };
  }

  /** Streams watch events line by line (never a partial line, so the stream can be cut cleanly) into the cache. */
  private pumpWatch(s: WatchSession, upRes: http.IncomingMessage): void {
    let buf = '';
    upRes.setEncoding('utf8');
    upRes.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this.onWatchLine(s, line);
      }
    });
    const finish = () => {
      if (s.mode === 'held') return;
      if (this.link.state === 'offline') s.hold();
      else s.end();
    };
    upRes.on('end', finish);
    upRes.on('aborted', () => {
      if (s.mode !== 'held') {
        s.hold();
        void this.probe();
      }
    });
    upRes.on('error', () => {
      if (s.mode !== 'held') {
        s.hold();
        void this.probe();
      }
    });
  }

  private onWatchLine(s: WatchSession, line: string): void {
    if (s.mode === 'held') return;
    let ev: { type?: string; object?: Obj };
    try {
      ev = JSON.parse(line);
    } catch {
      s.writeLine(line);
      return;
    }
    const obj = ev.object ?? {};
    if (obj.metadata?.resourceVersion && ev.type !== 'ERROR') s.lastRv = obj.metadata.resourceVersion;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED' || ev.type === 'DELETED' || ev.type === 'BOOKMARK') {
      const meta = collectionMeta(s.rc, { kind: obj.kind, apiVersion: obj.apiVersion, namespaced: obj.metadata?.namespace !== undefined });
      if (meta) {
        const c = this.cache.collection(s.rc.component, meta)!;
        if (ev.type === 'DELETED') c.remove(obj);
        else if (ev.type === 'BOOKMARK') c.bookmark(obj.metadata?.resourceVersion);
        else c.upsert(obj);
        if (ev.type !== 'BOOKMARK') this.scheduleFlush();
      }
    }
    if (s.table && ev.type !== 'BOOKMARK' && ev.type !== 'ERROR') {
      s.writeLine(JSON.stringify({ type: ev.type, object: toTable(obj.kind ?? '', [obj], { resourceVersion: obj.metadata?.resourceVersion }, s.include, this.now()) }));
    } else s.writeLine(line);
  }

  // ---------------------------------------------------------------- offline

  private serveOffline(req: http.IncomingMessage, res: http.ServerResponse, rc: RequestClass): void {
    const path = new URL(req.url ?? '/', 'http://hub').pathname;
    if (rc.discovery) {
      const d = this.cache.discovery.get(path);
      if (d) return sendBody(res, 200, d.body, d.contentType);
      return sendStatus(res, notCachedStatus(rc.component, `discovery document ${path}`));
    }
    const what = rc.api ? `${rc.api.resource}${rc.api.name ? ` "${rc.api.name}"` : ''}` : path;
    if (rc.verb === 'create' || rc.verb === 'update' || rc.verb === 'patch' || rc.verb === 'delete' || rc.verb === 'deletecollection') {
      if (acceptLocalWrite(req, res, rc, this.collectionFor(rc), this.log, this.opts.nodeName)) return;
      req.resume();
      this.log('write_refused', { client: rc.component, verb: rc.verb, what });
      return sendStatus(res, autonomousWriteRefused(rc.verb, what));
    }
    if (!rc.cacheable || !rc.api) return sendStatus(res, notCachedStatus(rc.component, what));
    let sel: Selectors;
    try {
      sel = this.selectors(rc);
    } catch (e) {
      if (e instanceof SelectorError) return sendStatus(res, failureStatus('BadRequest', e.message));
      throw e;
    }
    const c = this.collectionFor(rc);
    const table = wantsTable(req.headers.accept);
    const include = (rc.query.get('includeObject') as IncludeObject) ?? 'Metadata';
    const api = rc.api;
    if (rc.verb === 'list') {
      if (!c) {
        // YurtHub's rule: a list by metadata.name with nothing cached is an empty list, not an error.
        const meta = collectionMeta(rc);
        if (meta && sel.fields.some((f) => f.field === 'metadata.name')) {
          return sendBody(res, 200, JSON.stringify({ kind: `${meta.kind}List`, apiVersion: meta.apiVersion, metadata: { resourceVersion: '0' }, items: [] }), 'application/json');
        }
        return sendStatus(res, notCachedStatus(rc.component, api.resource));
      }
      const limit = Number(rc.query.get('limit') ?? '0');
      const out = buildList(c, { namespace: api.namespace, labels: sel.labels, fields: sel.fields, limit: Number.isFinite(limit) ? limit : 0, continueToken: rc.query.get('continue') ?? undefined }, table, include, this.now());
      res.once('finish', this.settler.soon);
      return sendParts(res, out.parts, out.contentType, this.readBuffers);
    }
    if (rc.verb === 'get') {
      const e = c?.get(api.namespace, api.name!);
      if (!c || !e) {
        const qualified = api.group ? `${api.resource}.${api.group}` : api.resource;
        return sendStatus(res, failureStatus('NotFound', `${qualified} "${api.name}" not found`, { name: api.name, group: api.group, kind: api.resource }));
      }
      if (table) return sendBody(res, 200, JSON.stringify(toTable(c.meta.kind, [JSON.parse(objectJson(c, e))], { resourceVersion: e.rv }, include, this.now())), 'application/json;as=Table;v=v1;g=meta.k8s.io');
      return sendBody(res, 200, objectJson(c, e), 'application/json');
    }
    if (rc.verb === 'watch') {
      const s = new WatchSession(this, res, rc, table, include);
      this.sessions.add(s);
      s.start();
      const rv = rc.query.get('resourceVersion') ?? '';
      if (c && (rv === '' || rv === '0')) {
        // "Start at most recent" semantics: the current cached state as ADDED events first.
        for (const { entry } of c.select(api.namespace, sel.labels, sel.fields)) {
          const obj = JSON.parse(objectJson(c, entry));
          s.writeLine(JSON.stringify({ type: 'ADDED', object: table ? toTable(c.meta.kind, [obj], { resourceVersion: entry.rv }, include, this.now()) : obj }));
        }
      }
      s.hold();
      return;
    }
    sendStatus(res, notCachedStatus(rc.component, what));
  }
}

/** Bytes of a proxied LIST between two young-generation collections (see reclaim.ts). */
const RECLAIM_BYTES = 1024 * 1024;

/** The scope a LIST answer covers (namespace, selectors, page), for recognising an unchanged relist. */
function listScope(rc: RequestClass): string {
  const q = rc.query;
  return `${rc.api?.namespace ?? ''}|${q.get('labelSelector') ?? ''}|${q.get('fieldSelector') ?? ''}|${q.get('limit') ?? ''}|${q.get('continue') ?? ''}`;
}

/** The list's metadata.resourceVersion from the first bytes of its body (servers write the envelope first). */
function listRvOf(head: string): string | undefined {
  return head.match(/"metadata":\{[^{}]*?"resourceVersion":"([^"]+)"/)?.[1];
}

/** TLS settings of the pooled agent, reused for the probe's one-off connection. */
function agentTlsOptions(agent: http.Agent): Record<string, unknown> {
  const o = (agent as unknown as { options?: Record<string, unknown> }).options ?? {};
  return { ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized };
}
