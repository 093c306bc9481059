import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildKbsApp } from '../../src/kbs/index.js';
import { KbsClient, KbsClientError, sampleEvidenceProvider } from '../../src/kbs/client.js';
import { decide, parseResourcePolicy } from '../../src/kbs/resource-policy.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { adminKeys, fakeClock, tempStore } from '../support/service.js';

const ERR = 'https://github.com/confidential-containers/kbs/errors/';
const d = (c: string) => `sha256:${c.repeat(64)}`;
const SIGNED = d('a');
const SIDECAR = d('b');
const OTHER = d('c');

test('resource policy images rule: parse and decide', () => {
  assert.throws(() => parseResourcePolicy(JSON.stringify({ rules: [{ resources: ['a/b/c'], images: ['sha256:short'] }] })), /not sha256/);
  assert.throws(() => parseResourcePolicy(JSON.stringify({ rules: [{ resources: ['a/b/c'], images: [] }] })), /at least one digest/);
  const p = parseResourcePolicy(JSON.stringify({ rules: [{ resources: ['app/key/*'], images: [SIGNED, SIDECAR] }] }));
  const facts = (imageDigests?: string[]) => ({ tee: 'snp', status: 'affirming', measurements: {}, imageDigests });
  assert.equal(decide(p, 'app/key/db', facts([SIGNED])).allow, true);
  assert.equal(decide(p, 'app/key/db', facts([SIGNED, SIDECAR])).allow, true);
  assert.match(decide(p, 'app/key/db', facts([SIGNED, OTHER])).reason, new RegExp(`image ${OTHER} is not one of`));
  assert.match(decide(p, 'app/key/db', facts([])).reason, /attested no image digests/);
  assert.match(decide(p, 'app/key/db', facts()).reason, /attested no image digests/);
});

describe('KBS releases a secret only to a workload attesting signed image digests', () => {
  const ts = tempStore();
  const clock = fakeClock();
  let app: FastifyInstance;
  let adminToken = '';
  const injectFetch = (async (url: string, init: RequestInit = {}) => {
    const r = await app.inject({ method: (init.method ?? 'GET') as 'GET', url: new URL(url).pathname, headers: init.headers as Record<string, string>, payload: init.body instanceof Uint8Array ? Buffer.from(init.body) : (init.body as string) });
    return new Response(r.rawPayload.length ? r.rawPayload : null, { status: r.statusCode, headers: r.headers as Record<string, string> });
  }) as typeof fetch;

  before(async () => {
    const adm = await adminKeys();
    adminToken = await adm.token({ sub: 'kbs-admin' });
    let service;
    ({ app, service } = await buildKbsApp({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, clock: clock.now }));
    await service.store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'] }), 'setup', clock.now());
    const admin = new KbsClient('http://kbs', { fetch: injectFetch, adminToken });
    await admin.setResource('shop/key/db', new TextEncoder().encode('s3cr3t'));
    await admin.setResourcePolicy(JSON.stringify({ rules: [{ resources: ['shop/key/*'], tees: ['sample'], status: ['affirming'], images: [SIGNED, SIDECAR] }] }));
  });
  after(async () => {
    await app.close();
    await ts.cleanup();
  });

  test('signed images attested → released; the digests are in the token, bound into report data', async () => {
    const c = new KbsClient('http://kbs', { fetch: injectFetch, imageDigests: [SIGNED, SIDECAR] });
    const token = await c.attest('sample', sampleEvidenceProvider());
    const ae = ((decodeJwt(token).submods as Record<string, Record<string, unknown>>).cpu0['ear.veraison.annotated-evidence']) as Record<string, Record<string, unknown>>;
    assert.deepEqual(ae.runtime_data_claims['image-digests'], [SIGNED, SIDECAR]);
    const rd = createHash('sha384').update(canonicalJson({ 'tee-pubkey': c.teePubKey, nonce: ae.runtime_data_claims.nonce, 'additional-evidence': '', 'image-digests': [SIGNED, SIDECAR] })).digest('base64');
    assert.equal(ae.report_data, rd);
    assert.equal(new TextDecoder().decode(await c.getResource('shop/key/db')), 's3cr3t');
  });

  test('an unsigned image in the workload, or no image claim → PolicyDeny', async () => {
    const mixed = new KbsClient('http://kbs', { fetch: injectFetch, imageDigests: [SIGNED, OTHER] });
    await mixed.attest('sample', sampleEvidenceProvider());
    await assert.rejects(mixed.getResource('shop/key/db'), (e: KbsClientError) => e.type === ERR + 'PolicyDeny' && new RegExp(`image ${OTHER}`).test(e.message));
    const none = new KbsClient('http://kbs', { fetch: injectFetch });
    await none.attest('sample', sampleEvidenceProvider());
    await assert.rejects(none.getResource('shop/key/db'), (e: KbsClientError) => e.type === ERR + 'PolicyDeny' && /attested no image digests/.test(e.message));
  });

  test('claiming digests the evidence does not bind is an attestation failure', async () => {
    const auth = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
    const cookie = String(auth.headers['set-cookie']).split(';')[0];
    const nonce = auth.json().nonce as string;
    // A valid TEE key (a malformed one is refused before the evidence is looked at).
    const key = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), alg: 'ECDH-ES+A256KW' };
    // Evidence made over the unsigned image's digest, runtime data claiming the signed one.
    const rd = createHash('sha384').update(canonicalJson({ 'tee-pubkey': key, nonce, 'additional-evidence': '', 'image-digests': [OTHER] })).digest('base64');
    const r = await app.inject({
      method: 'POST',
      url: '/kbs/v0/attest',
      headers: { cookie },
      payload: { 'runtime-data': { nonce, 'tee-pubkey': key, 'image-digests': [SIGNED] }, 'tee-evidence': { primary_evidence: { svn: '1', report_data: rd }, additional_evidence: '' } },
    });
    assert.equal(r.statusCode, 401);
    assert.equal(r.json().type, ERR + 'AttestationError');
    const bad = await app.inject({ method: 'POST', url: '/kbs/v0/attest', headers: { cookie }, payload: { 'runtime-data': { nonce, 'tee-pubkey': key, 'image-digests': ['latest'] }, 'tee-evidence': { primary_evidence: {} } } });
    assert.equal(bad.json().type, ERR + 'SerdeError');
  });
});
