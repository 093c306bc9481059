import Fastify, { type FastifyInstance } from 'fastify';

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
  });
}
