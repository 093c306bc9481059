import type { FastifyInstance } from 'fastify';
import { createHttpApp } from './http.js';
import { createVerifierRegistry, VerifierRegistry } from '../tee/index.js';
import type { Store } from '../store/types.js';
import { AdminAuth } from './admin-auth.js';
import { CollateralCache, type CollateralConfig } from './collateral.js';
import { NonceService } from './nonces.js';
import { UpstreamCollateral, type UpstreamCollateralOptions } from './upstream-collateral.js';
import { attestationRoutes } from './routes.js';
import { AttestationService, type AttestationServiceOptions } from './service.js';
import { TokenIssuer } from './tokens.js';
import { TpmEnrolment } from './tpm-enrol.js';
import { nodeTrustAuditAuth, nodeTrustAuditRoutes } from './node-trust-audit.js';
import { CryptoBatch } from './crypto-batch.js';

export interface BuildAttestationOptions {
  store: Store;
  /** Admin public keys (PEM SPKI or JWK). Empty = every admin call is refused. */
  adminKeys: (string | Record<string, unknown>)[];
  /** Dev mode registers the sample TEE (still only accepted where a policy names it). */
  dev?: boolean;
  registry?: VerifierRegistry;
  issuer?: string;
  publicUrl?: string;
  tokenTtlSeconds?: number;
  nonceTtlMs?: number;
  collateral?: CollateralConfig;
  /** Intel PCS / AMD KDS upstreams for real-TEE collateral (store-cached, refreshed on schedule). */
  upstream?: Omit<UpstreamCollateralOptions, 'store' | 'clock'>;
  verifyOptions?: Record<string, unknown>;
  /** TPM manufacturer CA certificates for AK enrolment (`--tpm-ca-dir`); none = enrolment refused. */
  tpmCaCerts?: Uint8Array[];
  /** Operator-pinned AKs (the dev swtpm under `coffer up --dev`), trusted beside enrolled ones. */
  tpmPins?: Uint8Array[];
  collateralOptions?: AttestationServiceOptions['collateralOptions'];
  clock?: () => number;
  /** Public keys (PEM) of the node-trust controller's audit key: enables POST /v1/node-trust/audit. */
  nodeTrustAuditKeys?: string[];
  bodyLimit?: number;
  logger?: boolean;
  /**
   * Coalesce the signature checks and token signatures of one event-loop turn (CryptoBatch, default true); false
   * runs each at once, as before (benchmarks compare the two).
   */
  cryptoBatch?: boolean;
}

/** The verifiers a service trusts: every shipped one, minus the sample TEE outside dev mode. */
export function serviceRegistry(dev: boolean): VerifierRegistry {
  const all = createVerifierRegistry();
  return new VerifierRegistry(all.list().filter((t) => dev || t !== 'sample').map((t) => all.get(t)));
}

export async function createAttestationService(o: BuildAttestationOptions): Promise<{ service: AttestationService; admin: AdminAuth }> {
  const clock = o.clock ?? Date.now;
  // One batch for the evidence checks and the token signatures of the requests a turn serves (crypto-batch.ts).
  const crypto = o.cryptoBatch === false ? undefined : new CryptoBatch();
  const tokens = new TokenIssuer(o.store, { issuer: o.issuer ?? 'coffer-attestation', ttlSeconds: o.tokenTtlSeconds, batch: crypto });
  await tokens.init(clock());
  const admin = await AdminAuth.fromPublicKeys(o.adminKeys as never);
  const collateral = o.collateral ? new CollateralCache(o.store, o.collateral, clock) : undefined;
  const tpm = new TpmEnrolment({ store: o.store, caCerts: o.tpmCaCerts ?? [], pins: o.tpmPins, clock });
  const service = new AttestationService({
    tpm,
    store: o.store, registry: o.registry ?? serviceRegistry(o.dev ?? false), tokens, nonces: new NonceService(o.store, o.nonceTtlMs),
    collateral, upstream: o.upstream ? new UpstreamCollateral({ ...o.upstream, store: o.store, clock }) : undefined, verifyOptions: o.verifyOptions, collateralOptions: o.collateralOptions, dev: o.dev ?? false, clock, crypto: crypto ?? null,
  });
  return { service, admin };
}

/** A standalone attestation app (`coffer attestation`); `coffer up` mounts the same plugin beside the KBS. */
export async function buildAttestationApp(o: BuildAttestationOptions): Promise<{ app: FastifyInstance; service: AttestationService }> {
  const { service, admin } = await createAttestationService(o);
  const app = createHttpApp({ logger: o.logger, bodyLimit: o.bodyLimit ?? 1024 * 1024 });
  await app.register(attestationRoutes, { service, admin, publicUrl: o.publicUrl });
  if (o.nodeTrustAuditKeys) await app.register(nodeTrustAuditRoutes, { store: o.store, auth: await nodeTrustAuditAuth(o.nodeTrustAuditKeys), now: () => service.now() });
  app.get('/healthz', async () => ({ ok: true }));
  service.metrics.install(app);
  return { app, service };
}

export { TpmEnrolment, loadTpmCaDir } from './tpm-enrol.js';
export { AttestationService, AdminAuth, TokenIssuer, NonceService, CollateralCache, UpstreamCollateral, attestationRoutes };
export { bindingValue } from './service.js';
