// Shared by the node-trust controller tests: an in-process attestation service (dev mode, the sample TEE signed by a
// dev key standing in for a node's evidence) and an "agent" that attests a node and returns its EAR token.
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../../src/attestation/index.js';
import { bindingValue } from '../../../src/attestation/service.js';
import { makeSampleEvidence } from '../../../src/tee/sample/attester.js';
import { adminKeys, tempStore } from '../../support/service.js';

export interface TestAttestation {
  url: string;
  /** The node-trust controller's audit key (PEM PKCS#8, P-256) the service trusts. */
  auditKeyPem: string;
  /** An admin token (reads /v1/admin/audit). */
  adminToken(): Promise<string>;
  app: FastifyInstance;
  /** challenge → sample evidence whose launch digest plays the node's boot measurement → EAR token. */
  tokenFor(node: string | undefined, digest: string, o?: { audience?: string; runtimeData?: unknown }): Promise<string>;
  close(): Promise<void>;
}

export async function startTestAttestation(o: { ttlSeconds?: number; digests: string[] }): Promise<TestAttestation> {
  const ts = tempStore();
  const adm = await adminKeys();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const audit = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const auditKeyPem = audit.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const devKey = { ...privateKey.export({ format: 'jwk' }), kid: 'node-dev' } as any;
  const { d: _d, ...devPub } = devKey;
  // The issuer is the URL, known only after listen: set it then (as `coffer up` does).
  const { app, service } = await buildAttestationApp({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, tokenTtlSeconds: o.ttlSeconds ?? 300, nodeTrustAuditKeys: [audit.publicKey.export({ format: 'pem', type: 'spki' }).toString()], verifyOptions: { sample: { devKeys: [devPub], requireSignature: true } } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  service.tokens.setIssuer(url);
  const put = await app.inject({ method: 'PUT', url: '/v1/admin/reference-values/default', headers: { authorization: `Bearer ${await adm.token()}` }, payload: { tees: ['sample'], measurements: { launch_digest: o.digests } } });
  if (put.statusCode !== 201) throw new Error(put.body);
  return {
    url,
    app,
    auditKeyPem,
    adminToken: () => adm.token(),
    async tokenFor(node, digest, x = {}) {
      const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json();
      const runtimeData = 'runtimeData' in x ? x.runtimeData : node === undefined ? undefined : { node };
      const rd = createHash('sha512').update(bindingValue(Buffer.from(nonce, 'base64'), runtimeData)).digest();
      const evidence = Buffer.from(JSON.stringify(makeSampleEvidence(runtimeData === undefined ? Buffer.from(nonce, 'base64') : rd, { devKey, launchDigest: digest }))).toString('base64');
      const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence, nonce, ...(runtimeData !== undefined ? { runtimeData } : {}), audience: x.audience ?? 'coffer-node-trust' } });
      if (r.statusCode !== 200) throw new Error(r.body);
      return r.json().token;
    },
    async close() {
      await app.close();
      await ts.cleanup();
    },
  };
}

export function nodeTrustPolicy(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'coffer.dev/v1alpha1', kind: 'NodeTrustPolicy', metadata: { name }, spec };
}

export async function postReport(controllerUrl: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${controllerUrl}/v1/node-trust/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}
