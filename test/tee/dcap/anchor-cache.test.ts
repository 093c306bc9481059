import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, verifyQuote } from '../../support/dcap-helpers.js';
import { createVerifierRegistry } from '../../../src/tee/index.js';
import { INTEL_SGX_ROOT_CA_PEM } from '../../../src/tee/dcap/constants.js';

// The verifier remembers trust-anchor arrays by identity (to skip hashing them per quote): the same array object
// with other content must be re-read, never answered from that memory.
test('trust anchors: the same array object with changed content is re-checked', async () => {
  const w = await world();
  const registry = createVerifierRegistry();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const anchors = w.trustAnchors.map((a) => Uint8Array.from(a));
  const ok = await verifyQuote(w, q, 'sgx', { registry, trustAnchors: anchors });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  assert.equal((await verifyQuote(w, q, 'sgx', { registry, trustAnchors: anchors })).verified, true);

  // Element replaced: Intel's root is not the issuer of the test PKI's chain.
  const original = anchors[0];
  anchors[0] = new TextEncoder().encode(INTEL_SGX_ROOT_CA_PEM);
  const swapped = await verifyQuote(w, q, 'sgx', { registry, trustAnchors: anchors });
  assert.equal(swapped.verified, false);
  assert.equal(swapped.errors[0].code, 'PCK_CHAIN_INVALID');

  // Back to the right root, then its bytes changed in place (same Uint8Array object): no longer that certificate.
  anchors[0] = original;
  assert.equal((await verifyQuote(w, q, 'sgx', { registry, trustAnchors: anchors })).verified, true);
  const text = new TextDecoder().decode(original);
  const at = text.indexOf('\n', text.indexOf('-----BEGIN CERTIFICATE-----')) + 40;
  original[at] = original[at] === 0x41 ? 0x42 : 0x41; // a base64 character inside the certificate body
  const mutated = await verifyQuote(w, q, 'sgx', { registry, trustAnchors: anchors });
  assert.equal(mutated.verified, false);
});
