import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildKbsApp } from '../../src/kbs/index.js';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { tempStore } from '../support/service.js';

// Structurally hostile bodies: every one must come back as a 4xx problem document, never a 500.
const bodies: unknown[] = [
  null, 0, 'str', [], [1, 2], {}, { a: 1 }, { 'runtime-data': 1 }, { 'runtime-data': {} },
  { 'runtime-data': { nonce: 1 } }, { 'runtime-data': { nonce: 'x', 'tee-pubkey': null } },
  { 'runtime-data': { nonce: 'x', 'tee-pubkey': { kty: 'EC' } } }, { 'tee-evidence': [] },
  { 'runtime-data': { nonce: 'x', 'tee-pubkey': { kty: 'RSA', alg: 'RSA-OAEP-256', n: 'AQAB', e: 'AQAB' } }, 'tee-evidence': {} },
  { 'runtime-data': { nonce: 'x', 'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'a', y: 'b' } }, 'tee-evidence': { primary_evidence: 'AAAA', additional_evidence: 5 } },
  { 'init-data': { format: 'json', body: '' } }, { version: '0.4.0', tee: 'sample', 'extra-params': { deep: { deeper: [1, { x: null }] } } },
  { tee: 'sample', evidence: 'AA==', nonce: 'x'.repeat(200) }, { tee: 'sample', evidence: 5, nonce: 'abcdefgh' },
  { tee: 'sample', evidence: 'e30=', nonce: 'abcdefghijk', attachments: { a: 5 } }, { tee: ['sample'], evidence: '', nonce: '' },
];

test('KBS and attestation API answer hostile bodies with 4xx, never 500', async () => {
  const ts = tempStore();
  const { app: kbs } = await buildKbsApp({ store: ts.store, adminKeys: [], dev: true });
  const { app: as } = await buildAttestationApp({ store: ts.store, adminKeys: [], dev: true });
  try {
    const auth = await kbs.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
    const cookie = String(auth.headers['set-cookie']).split(';')[0];
    for (const b of bodies) {
      for (const [app, url, headers] of [
        [kbs, '/kbs/v0/auth', {}], [kbs, '/kbs/v0/attest', { cookie }], [kbs, '/kbs/v0/attestation-policy', {}],
        [as, '/v1/attest', {}], [as, '/v1/challenge', {}],
      ] as const) {
        const r = await app.inject({ method: 'POST', url, payload: JSON.stringify(b), headers: { 'content-type': 'application/json', ...headers } });
        assert.ok(r.statusCode < 500, `${url} ${JSON.stringify(b)} → ${r.statusCode} ${r.body}`);
        if (r.statusCode >= 400) assert.match(r.headers['content-type'] as string, /problem\+json/);
      }
    }
    for (const url of ['/kbs/v0/resource/../../etc', '/kbs/v0/resource/a/b/c/d', '/kbs/v0/resource/%00/b/c', '/kbs/v0/resource/a/b/' + 'x'.repeat(300)]) {
      const r = await kbs.inject({ url });
      assert.ok(r.statusCode === 404 || r.statusCode === 401, `${url} → ${r.statusCode}`);
    }
  } finally {
    await kbs.close();
    await as.close();
    await ts.cleanup();
  }
});
