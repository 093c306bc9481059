import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The webhook's Prometheus metrics, on a registry owned by one server instance (no prom-client globals). */
export class WebhookMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'path' | 'outcome'>;
  readonly duration: Histogram<'path'>;
  readonly tlsReloads: Counter<'result'>;
  readonly certNotAfter: Gauge;
  readonly imageVerdicts: Counter<'result'>;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'coffer_webhook_requests_total',
      help: 'Admission requests by path and outcome (allowed, mutated, denied, bad_request, error)',
      labelNames: ['path', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'coffer_webhook_request_duration_seconds',
      help: 'Time from request end to response written',
      labelNames: ['path'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25],
      registers,
    });
    this.tlsReloads = new Counter({
      name: 'coffer_webhook_tls_reloads_total',
      help: 'Serving certificate reloads after the files changed, by result (ok, error)',
      labelNames: ['result'],
      registers,
    });
    this.certNotAfter = new Gauge({
      name: 'coffer_webhook_certificate_not_after_seconds',
      help: 'Expiry of the serving certificate in use (Unix seconds)',
      registers,
    });
    this.imageVerdicts = new Counter({
      name: 'coffer_webhook_image_verdicts_total',
      help: 'Image checks under spec.images by result (verified, or the rejection code: NO_SIGNATURES, REGISTRY_UNREACHABLE, ...)',
      labelNames: ['result'],
      registers,
    });
  }

  /** Exposes an image verification cache's size and hit/miss counts, read at scrape time. */
  watchImageCache(cache: { size: number; hits: number; misses: number }): void {
    const registers = [this.registry];
    new Gauge({ name: 'coffer_webhook_image_cache_entries', help: 'Verified images held in the cache', registers, collect() { this.set(cache.size); } });
    new Gauge({ name: 'coffer_webhook_image_cache_hits', help: 'Image lookups answered from the cache or a shared in-flight verification (monotonic)', registers, collect() { this.set(cache.hits); } });
    new Gauge({ name: 'coffer_webhook_image_cache_misses', help: 'Image lookups that ran a verification (monotonic)', registers, collect() { this.set(cache.misses); } });
  }
}
