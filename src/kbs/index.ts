import type { FastifyInstance } from 'fastify';
import { createAttestationService, type BuildAttestationOptions } from '../attestation/index.js';
import { createHttpApp } from '../attestation/http.js';
import type { AttestationService } from '../attestation/service.js';
import { kbsRoutes } from './routes.js';

/** A standalone KBS app (`coffer kbs`) with Coffer's attestation service built in (Trustee's built-in AS mode). */
export async function buildKbsApp(o: BuildAttestationOptions & { sessionTtlMs?: number }): Promise<{ app: FastifyInstance; service: AttestationService }> {
  const { service, admin } = await createAttestationService(o);
  const app = createHttpApp({ logger: o.logger, bodyLimit: o.bodyLimit });
  await app.register(kbsRoutes, { prefix: '/kbs', service, admin, sessionTtlMs: o.sessionTtlMs });
  app.get('/healthz', async () => ({ ok: true }));
  service.metrics.install(app);
  return { app, service };
}

export { kbsRoutes } from './routes.js';
export { encryptResource } from './jwe.js';
export { KBS_PROTOCOL_VERSION, KBS_SESSION_COOKIE } from './protocol.js';
