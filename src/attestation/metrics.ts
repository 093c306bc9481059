import { Counter, Histogram, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';

/** The `code` label per status class, not rebuilt per request. */
const STATUS_CLASS = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * Prometheus metrics of one service instance. A registry per instance (never prom-client's global default), so
 * tests and several apps in one process do not share counters.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly attestations = new Counter({ name: 'coffer_attestations_total', help: 'Attestations by TEE and result', labelNames: ['api', 'tee', 'result'], registers: [this.registry] });
  readonly resources = new Counter({ name: 'coffer_kbs_resource_requests_total', help: 'KBS resource requests by result', labelNames: ['result'], registers: [this.registry] });
  readonly http = new Histogram({
    name: 'coffer_http_request_duration_seconds', help: 'HTTP request latency by route and status class', labelNames: ['route', 'code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [this.registry],
  });

  /** Request timing hook plus GET /metrics on the given app. */
  install(app: FastifyInstance): void {
    // Callback style: an async hook costs a promise and its resolution on every request.
    app.addHook('onResponse', (req, reply, done) => {
      this.http.observe({ route: req.routeOptions.url ?? 'unmatched', code: STATUS_CLASS[Math.floor(reply.statusCode / 100)] ?? `${Math.floor(reply.statusCode / 100)}xx` }, reply.elapsedTime / 1000);
      done();
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
  }
}
