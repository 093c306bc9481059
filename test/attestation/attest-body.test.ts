import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv from 'ajv';
import { EVIDENCE_MAX, parseAttestBody } from '../../src/attestation/attest-body.js';
import { HttpProblem } from '../../src/attestation/problem.js';

/** The JSON schema /v1/attest was validated with before parseAttestBody: both must accept and refuse the same bodies. */
const schema = {
  type: 'object',
  required: ['tee', 'evidence', 'nonce'],
  additionalProperties: false,
  properties: {
    tee: { type: 'string', maxLength: 32 },
    evidence: { type: 'string', maxLength: EVIDENCE_MAX },
    attachments: { type: 'object', additionalProperties: { type: 'string', maxLength: EVIDENCE_MAX }, maxProperties: 16 },
    nonce: { type: 'string', minLength: 8, maxLength: 128 },
    runtimeData: {},
    publicKey: { type: 'object' },
    policyId: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9._-]+$' },
    audience: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9._:/-]+$' },
    nextChallenge: { type: 'boolean' },
  },
};

test('parseAttestBody accepts and refuses exactly what the JSON schema does (400 invalid-request naming the member)', () => {
  const ajv = new (Ajv as unknown as typeof Ajv.default)({ removeAdditional: false, coerceTypes: false, allErrors: false });
  const validate = ajv.compile(schema);
  const ok = { tee: 'sgx', evidence: 'AAAA', nonce: 'n'.repeat(44) };
  const astral = '\u{1F600}'; // one code point, two UTF-16 units
  const bodies: unknown[] = [
    ok, { ...ok, attachments: {}, runtimeData: { a: [1, null] }, publicKey: { kty: 'EC' }, policyId: 'p-1.x_y', audience: 'coffer-node-trust' },
    { ...ok, runtimeData: null }, { ...ok, runtimeData: 'x' }, { ...ok, audience: 'spiffe://a/b:c' },
    null, [], 'text', 42, true, {}, { tee: 'sgx', evidence: 'A' }, { evidence: 'A', nonce: ok.nonce }, { tee: 'sgx', nonce: ok.nonce },
    { ...ok, extra: 1 }, { ...ok, __proto_: 1 }, { ...ok, tee: 1 }, { ...ok, tee: null }, { ...ok, evidence: ['A'] },
    { ...ok, tee: 'x'.repeat(32) }, { ...ok, tee: 'x'.repeat(33) }, { ...ok, tee: astral.repeat(32) }, { ...ok, tee: astral.repeat(33) },
    { ...ok, nonce: 'n'.repeat(7) }, { ...ok, nonce: 'n'.repeat(8) }, { ...ok, nonce: astral.repeat(4) }, { ...ok, nonce: astral.repeat(8) },
    { ...ok, nonce: 'n'.repeat(128) }, { ...ok, nonce: 'n'.repeat(129) }, { ...ok, nonce: 8 },
    { ...ok, evidence: 'A'.repeat(EVIDENCE_MAX) }, { ...ok, evidence: 'A'.repeat(EVIDENCE_MAX + 1) },
    { ...ok, attachments: [] }, { ...ok, attachments: null }, { ...ok, attachments: 'x' }, { ...ok, attachments: { a: 1 } },
    { ...ok, attachments: { 'a/b~c': 'x' } }, { ...ok, attachments: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'v'])) },
    { ...ok, attachments: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
    { ...ok, attachments: { a: 'A'.repeat(EVIDENCE_MAX + 1) } },
    { ...ok, publicKey: null }, { ...ok, publicKey: [] }, { ...ok, publicKey: 'k' },
    { ...ok, policyId: '' }, { ...ok, policyId: 'bad id!' }, { ...ok, policyId: 'x'.repeat(128) }, { ...ok, policyId: 'x'.repeat(129) }, { ...ok, policyId: 3 },
    { ...ok, audience: '' }, { ...ok, audience: 'a b' }, { ...ok, audience: 'x'.repeat(253) }, { ...ok, audience: 'x'.repeat(254) }, { ...ok, audience: 'é' },
    { ...ok, policyId: 'ok\n' }, { ...ok, audience: 'aud\n' },
    { ...ok, nextChallenge: true }, { ...ok, nextChallenge: false }, { ...ok, nextChallenge: 'true' }, { ...ok, nextChallenge: 1 }, { ...ok, nextChallenge: null },
  ];
  for (const body of bodies) {
    const expected = validate(body);
    const label = JSON.stringify(body)?.slice(0, 120);
    if (expected) {
      assert.equal(parseAttestBody(body), body, label);
    } else {
      assert.throws(() => parseAttestBody(body), (e: unknown) => {
        assert.ok(e instanceof HttpProblem && e.status === 400 && e.slug === 'invalid-request', label);
        const path = validate.errors?.[0]?.instancePath ?? '';
        // The schema's first error and ours name the same member (or the body itself).
        if (path) assert.match(e.detail, new RegExp(`^body${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), label);
        return true;
      }, label);
    }
  }
});
