/**
 * `coffer agent stats`: serves GET /metrics (Prometheus text format) and GET /healthz. A scrape takes a fresh
 * sample (scrapes that overlap share one). When the CRI runtime fails (deadline on a hung socket, connection
 * refused while it restarts) the exporter logs it, serves coffer_stats_cri_up 0 without pod series, and asks the
 * runtime again only after an exponential backoff (1 s doubling to 30 s), so a dead runtime costs nothing per
 * scrape and the process never exits over it. node:http rather than fastify: two GET routes, and the agent's idle
 * memory is the budget (≤ 60 MB RSS).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StatsCollector, type CollectorOptions } from './collector.js';
import { PodMetrics } from './metrics.js';
import { StatsError } from './errors.js';

export type Logger = (event: string, detail?: Record<string, unknown>) => void;

export interface ExporterOptions extends CollectorOptions {
  listen: { host: string; port: number };
  log: Logger;
  backoff?: { initialMs: number; maxMs: number };
  now?: () => number;
  /** Called after each scrape is written (the CLI schedules a quiet-time GC there: scrapes are bursts). */
  afterScrape?: () => void;
}

export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new StatsError('BAD_INPUT', `--listen '${v}' must be HOST:PORT (e.g. 127.0.0.1:9464, [::]:9464)`);
  return { host: m[1] ?? m[2]!, port };
}

export class StatsExporter {
  readonly metrics = new PodMetrics();
  readonly collector: StatsCollector;
  private server?: Server;
  private inflight?: Promise<void>;
  private failures = 0;
  private retryAt = 0;
  private readonly now: () => number;

  constructor(private readonly opts: ExporterOptions) {
    this.collector = new StatsCollector(opts);
    this.now = opts.now ?? Date.now;
    this.metrics.criUp.set(0);
  }

  /** Take one sample into the registry (shared by concurrent scrapes; skipped while backing off). */
  sample(): Promise<void> {
    this.inflight ??= this.doSample().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async doSample(): Promise<void> {
    if (this.failures > 0 && this.now() < this.retryAt) return;
    const t0 = process.hrtime.bigint();
    try {
      const snap = await this.collector.collect();
      this.metrics.update(snap);
      this.metrics.criUp.set(1);
      if (this.failures > 0) this.opts.log('cri-recovered', { endpoint: this.opts.cri.endpoint, after_failures: this.failures });
      this.failures = 0;
    } catch (e) {
      const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
      this.failures++;
      const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures - 1, 20));
      this.retryAt = this.now() + delay;
      this.metrics.criErrors.inc();
      this.metrics.criUp.set(0);
      this.metrics.clearPods();
      this.opts.log('cri-failed', { endpoint: this.opts.cri.endpoint, error: (e as Error).message, failures: this.failures, retry_in_ms: delay });
    }
    this.metrics.scrapeSeconds.set(Number(process.hrtime.bigint() - t0) / 1e9);
  }

  /** Sample, then the exposition text (what GET /metrics returns). */
  async scrape(): Promise<string> {
    await this.sample();
    return this.metrics.text();
  }

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      const url = req.url ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (url !== '/metrics' && !url.startsWith('/metrics?')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      this.scrape().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType }).end(req.method === 'HEAD' ? undefined : text);
          this.opts.afterScrape?.();
        },
        (e: Error) => {
          this.opts.log('scrape-failed', { error: e.message });
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
    });
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new StatsError('LISTEN_FAILED', `cannot listen on ${this.opts.listen.host}:${this.opts.listen.port}: ${e.message}`)));
      server.listen(this.opts.listen.port, this.opts.listen.host, () => resolve());
    });
    this.server = server;
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()).closeAllConnections());
    this.opts.cri.close();
  }
}
