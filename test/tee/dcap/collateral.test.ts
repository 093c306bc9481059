import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { openDcapCollateral, parseQuoteCollateralV3 } from '../../../src/tee/dcap/collateral.js';
import { rawMemberText } from '../../../src/tee/dcap/raw-json.js';
import { CollateralError } from '../../../src/tee/common/errors.js';
import { verifyEvidence } from '../../../src/index.js';
import { world } from '../../support/dcap-helpers.js';

function tmp(files: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-coll-'));
  for (const [n, b] of Object.entries(files)) writeFileSync(join(dir, n), b);
  return dir;
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CollateralError);
    assert.equal(e.code, code);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test('raw JSON member text is sliced exactly (whitespace, escapes, nesting)', () => {
  const t = '{ "a" : "x\\"}", "tcbInfo" :  {"b":[1,{"c":"}"}],"d":null} , "signature":"ab"}';
  assert.equal(rawMemberText(t, 'tcbInfo'), '{"b":[1,{"c":"}"}],"d":null}');
  assert.equal(rawMemberText(t, 'signature'), '"ab"');
  assert.equal(rawMemberText(t, 'nope'), undefined);
});

test('a PCS directory is recognised by content: SGX and TDX items together, nested folder, any names', async () => {
  const w = await world();
  const sgx = await w.pcsFiles('sgx');
  const tdx = await w.pcsFiles('tdx');
  const dir = tmp({});
  try {
    for (const [n, b] of Object.entries(sgx)) writeFileSync(join(dir, `s-${n}`), b);
    mkdirSync(join(dir, 'tdx'));
    for (const [n, b] of Object.entries(tdx)) writeFileSync(join(dir, 'tdx', `x${n}.bin`), b);
    const provider = await openDcapCollateral(dir);
    for (const [tee, version] of [['sgx', 3], ['tdx', 4]] as const) {
      const r = await verifyEvidence(await w.quote({ tee, version }), { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider } });
      assert.equal(r.verified, true, JSON.stringify(r.errors));
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('missing items are named; unrecognised files are rejected', async () => {
  const w = await world();
  const f = await w.pcsFiles('sgx');
  const onlyJson = tmp({ x: f['a.json'] });
  const junk = tmp({ ...f, 'readme.txt': 'hello' });
  try {
    await rejects(openDcapCollateral(onlyJson), 'COLLATERAL_MISSING', /QE identity JSON; Root CA CRL and PCK CRL; issuer certificates/);
    await rejects(openDcapCollateral(junk), 'COLLATERAL_INVALID', /readme\.txt/);
  } finally {
    rmSync(onlyJson, { recursive: true });
    rmSync(junk, { recursive: true });
  }
  // a TDX quote against an SGX-only bundle names the TCB info it needed
  const dir = tmp(f);
  try {
    const provider = await openDcapCollateral(dir);
    await rejects(provider.getCollateral({ tee: 'tdx', fmspc: 'B0C06F000000', caType: 'platform' }), 'COLLATERAL_MISSING', /TDX TCB info for FMSPC B0C06F000000/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('QuoteCollateralV3 JSON: missing keys are named, bad signatures rejected', () => {
  assert.throws(() => parseQuoteCollateralV3({ tcb_info: '{}' }), (e: CollateralError) => e.code === 'COLLATERAL_MISSING' && /pck_crl_issuer_chain/.test(e.message));
  assert.throws(
    () =>
      parseQuoteCollateralV3({
        pck_crl_issuer_chain: 'x', root_ca_crl: '00', pck_crl: '00', tcb_info_issuer_chain: 'x', tcb_info: '{}',
        tcb_info_signature: 'zz', qe_identity_issuer_chain: 'x', qe_identity: '{}', qe_identity_signature: 'zz',
      }),
    (e: CollateralError) => e.code === 'COLLATERAL_INVALID',
  );
});

test('a custom DcapCollateralProvider is asked by TEE type, FMSPC and PCK CA type', async () => {
  const w = await world();
  const asked: unknown[] = [];
  const provider = {
    async getCollateral(req: { tee: 'sgx' | 'tdx'; fmspc: string; caType: 'platform' | 'processor' }) {
      asked.push(req);
      return w.collateral(req.tee);
    },
  };
  for (const [tee, version] of [['sgx', 3], ['tdx', 4]] as const) {
    const r = await verifyEvidence(await w.quote({ tee, version }), { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider } });
    assert.equal(r.verified, true, JSON.stringify(r.errors));
  }
  assert.deepEqual(asked, [
    { tee: 'sgx', fmspc: '00A067110000', caType: 'processor' },
    { tee: 'tdx', fmspc: 'B0C06F000000', caType: 'platform' },
  ]);
});
