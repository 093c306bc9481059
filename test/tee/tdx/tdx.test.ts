import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, verifyQuote } from '../../support/dcap-helpers.js';
import { TdxVerifier } from '../../../src/tee/tdx/verifier.js';

test('TDX claims for v4 (TD 1.0), v5 TD 1.0 and v5 TD 1.5 bodies', async () => {
  const w = await world();
  const rd = new Uint8Array(64).fill(0x61);
  for (const [version, td15] of [[4, false], [5, false], [5, true]] as const) {
    const q = await w.quote({ tee: 'tdx', version, td15, reportData: rd, mrTd: new Uint8Array(48).fill(0x11) });
    const r = await verifyQuote(w, q, 'tdx');
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    const c = r.claims!;
    assert.equal(c.tee, 'tdx');
    assert.equal(c.measurements.mrtd, '11'.repeat(48));
    for (let i = 0; i < 4; i++) assert.equal(c.measurements[`rtmr${i}`], (0xa0 + i).toString(16).repeat(48));
    assert.equal(c.measurements.mrseam, '5e'.repeat(48));
    assert.equal(c.measurements.mrsignerseam, '00'.repeat(48));
    for (const m of ['mrconfigid', 'mrowner', 'mrownerconfig']) assert.equal(c.measurements[m], '00'.repeat(48));
    assert.equal(c.reportData, '61'.repeat(64));
    assert.equal(c.debug, false);
    assert.equal(c.raw.teeTcbSvn, '03000200000000000000000000000000');
    assert.equal(c.svns.tdxModuleSvn, 3);
    assert.equal(c.platform.fmspc, 'B0C06F000000');
    assert.equal(c.platform.pckCaType, 'platform');
    assert.equal('mrServiceTd' in c.raw, td15);
  }
});

test('TDX debug comes from TD_ATTRIBUTES.DEBUG', async () => {
  const w = await world();
  const r = await verifyQuote(w, await w.quote({ tee: 'tdx', version: 4, debug: true }), 'tdx');
  assert.equal(r.verified, true);
  assert.equal(r.claims!.debug, true);
});

test('TDX verifier detect() and an SGX quote given as TDX is rejected', async () => {
  const w = await world();
  const v = new TdxVerifier();
  const tdx = await w.quote({ tee: 'tdx', version: 5 });
  const sgx = await w.quote({ tee: 'sgx', version: 4 });
  assert.equal(v.detect({ evidence: tdx }), true);
  assert.equal(v.detect({ evidence: sgx }), false);
  await assert.rejects(v.verify({ evidence: sgx }, { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral('sgx') } }), (e: Error & { code?: string }) => e.code === 'TEE_TYPE_MISMATCH');
});
