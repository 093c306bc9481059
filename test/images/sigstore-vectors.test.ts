import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCandidate } from '../../src/images/verify-signature.js';
import { compileImagePolicy } from '../../src/images/policy.js';
import { parseTrustedRoot } from '../../src/images/trust-root.js';
import { ImageError } from '../../src/images/errors.js';
import { sha256 } from '../support/registry.js';

// Real public-good Sigstore data from sigstore-js's test fixtures (attribution in the file): the keyless path
// (Sigstore bundle, Fulcio chain, SCT, Rekor SET, identity) on bytes Coffer did not produce.
const v = JSON.parse(readFileSync(join(import.meta.dirname, 'vectors', 'sigstore-js-public-good.json'), 'utf8'));
const root = parseTrustedRoot(Buffer.from(JSON.stringify(v.trustedRoot)));
const artifact = Buffer.from(v.artifact);
const target = { digest: sha256(artifact), manifest: artifact, repository: 'n/a', trustRoot: root };
const signer = (subjectRegExp: string, issuer = 'https://github.com/login/oauth') => compileImagePolicy({ signers: [{ name: 'dev', keyless: { issuer, subjectRegExp } }] }).signers[0];

test('sigstore-js public-good bundle: verifies, with its Fulcio identity', () => {
  const r = verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.validBundle }, signer('brian@dehamer\\.com'), target);
  assert.deepEqual(r.identity, { issuer: 'https://github.com/login/oauth', subject: 'brian@dehamer.com' });
});

test('sigstore-js public-good bundle: wrong identity, other artifact, expired certificate are refused', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ImageError, String(e));
      return e.code;
    }
    return 'accepted';
  };
  assert.equal(code(() => verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.validBundle }, signer('someone@else\\.example'), target)), 'IDENTITY_MISMATCH');
  assert.equal(code(() => verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.validBundle }, signer('.*', 'https://accounts.google.com'), target)), 'IDENTITY_MISMATCH');
  const other = Buffer.from('hello, world?');
  assert.notEqual(code(() => verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.validBundle }, signer('.*'), { ...target, digest: sha256(other), manifest: other })), 'accepted');
  assert.equal(code(() => verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.expiredCertBundle }, signer('.*'), target)), 'CERTIFICATE_INVALID');
  // A trusted root without the public-good CA: the chain cannot be built.
  const bare = parseTrustedRoot(Buffer.from(JSON.stringify({ ...v.trustedRoot, certificateAuthorities: [{ ...v.trustedRoot.certificateAuthorities[0], certChain: { certificates: [v.trustedRoot.certificateAuthorities[0].certChain.certificates[0]] }, validFor: { start: '2030-01-01T00:00:00Z' } }] })));
  assert.equal(code(() => verifyCandidate({ kind: 'bundle', origin: 'vector', bundle: v.validBundle }, signer('.*'), { ...target, trustRoot: bare })), 'CERTIFICATE_INVALID');
});
