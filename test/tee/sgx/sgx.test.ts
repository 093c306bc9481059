import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, verifyQuote } from '../../support/dcap-helpers.js';
import { SgxVerifier } from '../../../src/tee/sgx/verifier.js';
import { verifyEvidence } from '../../../src/index.js';

test('SGX claims: mrenclave, mrsigner, isvProdId, isvSvn, reportData, platform, raw', async () => {
  const w = await world();
  const rd = new Uint8Array(64).map((_, i) => i);
  for (const version of [3, 4] as const) {
    const q = await w.quote({ tee: 'sgx', version, mrEnclave: new Uint8Array(32).fill(0xab), mrSigner: new Uint8Array(32).fill(0xcd), isvProdId: 7, isvSvn: 9, reportData: rd });
    const r = await verifyQuote(w, q, 'sgx');
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    const c = r.claims!;
    assert.equal(c.tee, 'sgx');
    assert.equal(c.measurements.mrenclave, 'ab'.repeat(32));
    assert.equal(c.measurements.mrsigner, 'cd'.repeat(32));
    assert.equal(c.svns.isvProdId, 7);
    assert.equal(c.svns.isvSvn, 9);
    assert.equal(c.svns.qeSvn, 8);
    assert.equal(c.svns.pceSvn, 13);
    assert.equal(c.reportData, Buffer.from(rd).toString('hex'));
    assert.equal(c.debug, false);
    assert.deepEqual(c.platform, { fmspc: '00A067110000', pceId: '0000', pckCaType: 'processor' });
    assert.equal(c.raw.quoteVersion, version);
    assert.equal(c.raw.attributes, '0500000000000000e700000000000000');
  }
});

test('SGX debug comes from ATTRIBUTES.DEBUG and is a claim, not a verification failure', async () => {
  const w = await world();
  const r = await verifyQuote(w, await w.quote({ tee: 'sgx', version: 3, debug: true }), 'sgx');
  assert.equal(r.verified, true);
  assert.equal(r.claims!.debug, true);
});

test('SGX verifier: detect() and a TDX quote given as SGX is TEE_TYPE_MISMATCH', async () => {
  const w = await world();
  const v = new SgxVerifier();
  const sgx = await w.quote({ tee: 'sgx', version: 3 });
  const tdx = await w.quote({ tee: 'tdx', version: 4 });
  assert.equal(v.detect({ evidence: sgx }), true);
  assert.equal(v.detect({ evidence: tdx }), false);
  assert.equal(v.detect({ evidence: new Uint8Array(3) }), false);
  const r = await verifyEvidence(tdx, { tee: 'sgx', at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral('tdx') } });
  assert.equal(r.errors[0].code, 'TEE_TYPE_MISMATCH');
});
