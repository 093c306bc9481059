import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The smallest API-server stand-in the webhook's informers need, on the documented wire format: GET <collection>
 * returns a List with metadata.resourceVersion; GET <collection>?watch=true&resourceVersion=N streams one JSON
 * event per line ({"type":"ADDED|MODIFIED|DELETED","object":…}) and keeps the connection open. Anything else 404s
 * with a Status.
 */
export class FakeListWatch {
  private server?: Server;
  private rv = 100;
  private readonly items = new Map<string, Map<string, Record<string, any>>>();
  private readonly watchers = new Map<string, Set<ServerResponse>>();
  readonly requests: string[] = [];

  constructor(private readonly collections: Record<string, { kind: string; apiVersion: string }>) {
    for (const path of Object.keys(collections)) {
      this.items.set(path, new Map());
      this.watchers.set(path, new Set());
    }
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      this.requests.push(`${req.method} ${url.pathname}${url.search}`);
      const items = this.items.get(url.pathname);
      if (req.method !== 'GET' || !items) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'NotFound', code: 404, message: 'not found' }));
        return;
      }
      const meta = this.collections[url.pathname];
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        const set = this.watchers.get(url.pathname)!;
        set.add(res);
        res.on('close', () => set.delete(res));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: `${meta.kind}List`, apiVersion: meta.apiVersion, metadata: { resourceVersion: String(this.rv) }, items: [...items.values()] }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Stores the object (new resourceVersion) and sends the event to open watches. */
  put(path: string, obj: Record<string, any>, type?: 'ADDED' | 'MODIFIED'): void {
    const items = this.items.get(path)!;
    const name = obj.metadata.name;
    const t = type ?? (items.has(name) ? 'MODIFIED' : 'ADDED');
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv), uid: `uid-${name}` } };
    items.set(name, stored);
    this.emit(path, t, stored);
  }

  delete(path: string, name: string): void {
    const items = this.items.get(path)!;
    const obj = items.get(name);
    if (!obj) return;
    items.delete(name);
    this.emit(path, 'DELETED', { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } });
  }

  private emit(path: string, type: string, object: unknown): void {
    for (const w of this.watchers.get(path)!) w.write(`${JSON.stringify({ type, object })}\n`);
  }

  async close(): Promise<void> {
    for (const set of this.watchers.values()) for (const w of set) w.end();
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      this.server?.closeAllConnections();
    });
  }
}
