import Fastify, { type FastifyInstance } from 'fastify';
import { isAdminPath, isKbsAdminRequest } from './admin-paths.js';
import { PROBLEM_BASE } from './problem.js';

export interface HttpAppOptions {
  bodyLimit?: number;
  logger?: boolean;
  /** Serve HTTPS with this certificate and key (PEM); the server's context can be swapped later (rotation). */
  https?: { cert: Buffer; key: Buffer };
}

/**
 * The fastify instance every Coffer service mounts its plugins on. Schema validation must reject unknown members
 * rather than silently strip them (fastify's default `removeAdditional: true` would accept them).
 */
export function createHttpApp(o: HttpAppOptions = {}): FastifyInstance {
  return Fastify({
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key, minVersion: 'TLSv1.2' as const } } : {}),
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 2 * 1024 * 1024,
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
}
