// /v1/attest's nextChallenge extension: the answer carries the next challenge (nextNonce), an ordinary store-backed
// nonce — single-use, with the service's nonce lifetime — so a periodic attester needs one request per interval.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { adminKeys, fakeClock, tempStore } from '../support/service.js';

const sampleEvidence = (nonce: string) => Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64');
const NONCE_TTL_MS = 90_000;
const ts = tempStore();
const clock = fakeClock();
let app: FastifyInstance;

before(async () => {
  const adm = await adminKeys();
  ({ app } = await buildAttestationApp({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, clock: clock.now, nonceTtlMs: NONCE_TTL_MS }));
  const put = await app.inject({ method: 'PUT', url: '/v1/admin/reference-values/default', headers: { authorization: `Bearer ${await adm.token()}` }, payload: { tees: ['sample'] } });
  assert.equal(put.statusCode, 201, put.body);
});
after(async () => {
  await app.close();
  await ts.cleanup();
});

const challenge = async () => (await app.inject({ method: 'POST', url: '/v1/challenge' })).json().nonce as string;
const attest = (nonce: string, extra: Record<string, unknown> = { nextChallenge: true }) =>
  app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: sampleEvidence(nonce), nonce, ...extra } });

test('nextChallenge: the answer keeps its fields and adds nextNonce with its expiry; the next round uses it once', async () => {
  const r = await attest(await challenge());
  assert.equal(r.statusCode, 200, r.body);
  const a = r.json();
  assert.deepEqual(Object.keys(a).sort(), ['failures', 'nextNonce', 'nextNonceExpiresAt', 'status', 'token', 'warnings']);
  assert.equal(a.status, 'affirming');
  assert.equal(Buffer.from(a.nextNonce, 'base64').length, 32);
  assert.equal(Date.parse(a.nextNonceExpiresAt), clock.now() + NONCE_TTL_MS);
  // The piggybacked nonce is a challenge like any other: it buys one attestation, which hands out the next one.
  const r2 = await attest(a.nextNonce);
  assert.equal(r2.statusCode, 200, r2.body);
  assert.notEqual(r2.json().nextNonce, a.nextNonce);
  // Replayed: refused, and a refused attestation hands out no nonce.
  const replay = await attest(a.nextNonce);
  assert.equal(replay.statusCode, 409);
  assert.match(replay.json().type, /\/nonce-replayed$/);
  assert.equal(replay.json().nextNonce, undefined);
});

test('a piggybacked nonce expires with the nonce lifetime; without nextChallenge none is issued', async () => {
  const a = (await attest(await challenge())).json();
  clock.advance(NONCE_TTL_MS + 1);
  const late = await attest(a.nextNonce);
  assert.equal(late.statusCode, 400);
  assert.match(late.json().type, /\/nonce-expired$/);
  const plain = await attest(await challenge(), {});
  assert.equal(plain.statusCode, 200);
  assert.equal(plain.json().nextNonce, undefined);
  assert.equal(plain.json().nextNonceExpiresAt, undefined);
  // Not a boolean: a schema refusal, never a silent default.
  const bad = await attest(await challenge(), { nextChallenge: 'yes' });
  assert.equal(bad.statusCode, 400);
});

test('evidence not bound to the nonce: refused, and no next nonce is handed out', async () => {
  const nonce = await challenge();
  const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: sampleEvidence(Buffer.alloc(32, 1).toString('base64')), nonce, nextChallenge: true } });
  assert.equal(r.statusCode, 400);
  assert.equal(r.json().nextNonce, undefined);
});
