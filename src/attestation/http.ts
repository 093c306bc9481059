import Fastify, { type FastifyInstance } from 'fastify';
import { isAdminPath, isKbsAdminRequest } from './admin-paths.js';
import { PROBLEM_BASE } from './problem.js';
import { jsonDepth, MAX_NESTING_DEPTH } from '../tee/common/nesting.js';

export interface HttpAppOptions {
  bodyLimit?: number;
  logger?: boolean;
  /** Serve HTTPS with this certificate and key (PEM); the server's context can be swapped later (rotation). */
  https?: { cert: Buffer; key: Buffer };
  /** Whole request (headers and body) must arrive within this many ms; slow-loris bodies are cut (default 30 s). */
  requestTimeoutMs?: number;
  /** Request headers must arrive within this many ms (default 10 s, never more than requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** How often Node checks the two timeouts above (default 1 s; tests use less). */
  timeoutCheckIntervalMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

/**
 * The fastify instance every Coffer service mounts its plugins on. Schema validation must reject unknown members
 * rather than silently strip them (fastify's default `removeAdditional: true` would accept them).
 *
 * Hostile input is bounded before any handler runs: fastify's default `requestTimeout` is 0 (a body sent one byte
 * every few seconds, or a 2^64-1 chunk header followed by silence, held a socket forever), so every server gets
 * request and header timeouts; JSON bodies nested deeper than MAX_NESTING_DEPTH are refused before JSON.parse
 * (deep documents overflowed the parser's stack or exhausted the heap later), so /v1/attest and /kbs/v0/attest
 * answer 400 without consuming a nonce.
 */
export function createHttpApp(o: HttpAppOptions = {}): FastifyInstance {
  const requestTimeout = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(o.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout);
  const serverOptions = { connectionsCheckingInterval: o.timeoutCheckIntervalMs ?? 1_000, headersTimeout, requestTimeout };
  const app = Fastify({
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key, minVersion: 'TLSv1.2' as const, ...serverOptions } } : { http: serverOptions }),
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 2 * 1024 * 1024,
    requestTimeout,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // A URL fastify cannot even decode is answered before any hook runs. On an admin path that answer is 401 like
    // every other unauthenticated admin request (it cannot be served to anyone), so probing learns nothing.
    frameworkErrors: (err, req, res) => {
      const reply = res as unknown as { code(n: number): { type(t: string): { send(b: unknown): unknown } }; send(b: unknown): unknown };
      const url = req.raw.url ?? '';
      if (isAdminPath(url)) {
        return reply.code(401).type('application/problem+json').send({ type: `${PROBLEM_BASE}admin-unauthenticated`, title: 'Admin authentication required', status: 401, detail: 'admin endpoints need an Authorization: Bearer <admin token> header' });
      }
      if (isKbsAdminRequest(req.raw.method ?? 'GET', url)) {
        return reply.code(401).type('application/problem+json').send({ type: 'https://github.com/confidential-containers/kbs/errors/AdminAuthAccess', detail: 'admin authentication required', status: 401 });
      }
      return reply.code(400).type('application/json').send({ error: 'Bad Request', code: err.code, message: err.message, statusCode: 400 });
    },
  });
  app.server.headersTimeout = headersTimeout;
  // Closing: fastify closes the keep-alive connections that are idle when close() starts, but one whose request
  // was in flight then stays open after its answer until the client drops it (undici: 4 s), and close() waits for
  // it. While closing, idle connections are closed again every 25 ms, so stopping takes as long as the in-flight
  // requests (no hook on the request path: nothing is added to a request's cost).
  let sweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    sweep = setInterval(() => app.server.closeIdleConnections(), 25);
    done();
  });
  app.addHook('onClose', (_app, done) => {
    clearInterval(sweep);
    done();
  });
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonDepth(body as string, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) {
      const e = Object.assign(new Error(`JSON body is nested more than ${MAX_NESTING_DEPTH} levels deep`), { statusCode: 400, code: 'FST_ERR_CTP_NESTING_TOO_DEEP' });
      done(e, undefined);
      return;
    }
    parseJson(req, body as string, done);
  });
  return app;
}
