import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifierRegistry } from '../../src/tee/registry.js';
import { verifyEvidenceWith } from '../../src/tee/verify-evidence.js';
import { VerificationError } from '../../src/tee/common/errors.js';
import type { Claims } from '../../src/tee/common/claims.js';
import type { TeeVerifier } from '../../src/tee/common/verifier.js';
import { createHash } from 'node:crypto';

// A verifier defined by the test: it accepts evidence starting with "OK" and echoes the rest as report data.
const echo: TeeVerifier = {
  tee: 'sample',
  detect: (i) => i.evidence[0] === 0x4f,
  async verify(i) {
    if (i.evidence[1] !== 0x4b) throw new VerificationError('BAD_SIGNATURE', 'signature does not verify');
    const claims: Claims = {
      tee: 'sample', measurements: {}, svns: {}, debug: false,
      reportData: Buffer.from(i.evidence.subarray(2)).toString('hex'),
      platform: {}, advisories: [], warnings: [], raw: {},
    };
    return claims;
  },
};

test('dispatches by detection and reports verified claims', async () => {
  const r = await verifyEvidenceWith(new VerifierRegistry([echo]), new Uint8Array([0x4f, 0x4b, 1, 2]));
  assert.equal(r.verified, true);
  assert.equal(r.tee, 'sample');
  assert.equal(r.claims?.reportData, '0102');
});

test('typed verifier errors become reports, never exceptions', async () => {
  const r = await verifyEvidenceWith(new VerifierRegistry([echo]), new Uint8Array([0x4f, 0x00]));
  assert.equal(r.verified, false);
  assert.deepEqual(r.errors.map((e) => e.code), ['BAD_SIGNATURE']);
});

test('unknown evidence and unknown TEE are typed rejections', async () => {
  const reg = new VerifierRegistry([echo]);
  assert.equal((await verifyEvidenceWith(reg, new Uint8Array([1]))).errors[0].code, 'UNKNOWN_EVIDENCE');
  assert.equal((await verifyEvidenceWith(reg, new Uint8Array([1]), { tee: 'snp' })).errors[0].code, 'UNSUPPORTED_TEE');
});

test('nonce must prefix the report data, raw or hashed', async () => {
  const reg = new VerifierRegistry([echo]);
  const nonce = new Uint8Array([9, 9, 9]);
  const hashed = createHash('sha256').update(nonce).digest();
  assert.equal((await verifyEvidenceWith(reg, new Uint8Array([0x4f, 0x4b, 9, 9, 9, 0]), { nonce })).verified, true);
  assert.equal((await verifyEvidenceWith(reg, new Uint8Array([0x4f, 0x4b, ...hashed]), { nonce })).verified, true);
  const bad = await verifyEvidenceWith(reg, new Uint8Array([0x4f, 0x4b, 9, 9, 8]), { nonce });
  assert.equal(bad.errors[0].code, 'NONCE_MISMATCH');
});

test('unexpected exceptions fail closed as INTERNAL', async () => {
  const boom: TeeVerifier = { ...echo, verify: async () => { throw new RangeError('oops'); } };
  const r = await verifyEvidenceWith(new VerifierRegistry([boom]), new Uint8Array([0x4f]));
  assert.equal(r.verified, false);
  assert.equal(r.errors[0].code, 'INTERNAL');
});
