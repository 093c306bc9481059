import Fastify, { type FastifyInstance } from 'fastify';

export interface HttpAppOptions {
  bodyLimit?: number;
  logger?: boolean;
}

/**
 * The fastify instance every Coffer service mounts its plugins on. Schema validation must reject unknown members
 * rather than silently strip them (fastify's default `removeAdditional: true` would accept them).
 */
export function createHttpApp(o: HttpAppOptions = {}): FastifyInstance {
  return Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 2 * 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
}
