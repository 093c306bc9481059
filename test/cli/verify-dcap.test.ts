import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { cli as run } from '../support/cli.js';
import { world } from '../support/dcap-helpers.js';
import { haveVectors, vectorsDir } from '../support/vectors.js';

const nonce = Buffer.from('c0ffee00c0ffee00', 'hex');

async function fixture() {
  const w = await world();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-cli-dcap-'));
  const rd = new Uint8Array(64);
  rd.set(createHash('sha256').update(nonce).digest());
  writeFileSync(join(dir, 'sgx.dat'), await w.quote({ tee: 'sgx', version: 3, reportData: rd }));
  writeFileSync(join(dir, 'sgx-debug.dat'), await w.quote({ tee: 'sgx', version: 4, debug: true }));
  writeFileSync(join(dir, 'tdx.dat'), await w.quote({ tee: 'tdx', version: 5, td15: true, reportData: rd }));
  writeFileSync(join(dir, 'tdx-debug.dat'), await w.quote({ tee: 'tdx', version: 4, debug: true }));
  const coll = join(dir, 'coll');
  mkdirSync(coll);
  for (const tee of ['sgx', 'tdx'] as const) {
    for (const [n, b] of Object.entries(await w.pcsFiles(tee))) writeFileSync(join(coll, `${tee}${n}`), b);
  }
  writeFileSync(join(dir, 'root.pem'), w.pki.root.pem);
  writeFileSync(join(dir, 'strict.yaml'), 'allowedTcbStatuses: [UpToDate]\nmeasurements:\n  mrtd: ["' + '7d'.repeat(48) + '"]\n');
  writeFileSync(join(dir, 'wrong.yaml'), 'measurements:\n  mrenclave: ["' + '00'.repeat(32) + '"]\n');
  const base = ['--collateral', coll, '--trust-anchor', join(dir, 'root.pem'), '--at', w.at.toISOString()];
  return { w, dir, base };
}

test('coffer verify sgx/tdx: exit 0 with --json lines, claims and TCB status', async () => {
  const { dir, base } = await fixture();
  const sgx = await run(['verify', join(dir, 'sgx.dat'), ...base, '--json']);
  assert.equal(sgx.code, 0, sgx.out + sgx.err);
  const line = JSON.parse(sgx.out);
  assert.equal(line.verified, true);
  assert.equal(line.tee, 'sgx');
  assert.equal(line.tcbStatus, 'UpToDate');
  assert.deepEqual(line.errors, []);
  assert.equal(line.claims.measurements.mrenclave, 'e1'.repeat(32));
  assert.equal(line.claims.svns.isvProdId, 1);
  assert.equal(line.claims.debug, false);
  const tdx = await run(['verify', join(dir, 'tdx.dat'), ...base, '--tee', 'tdx', '--json']);
  assert.equal(tdx.code, 0, tdx.out + tdx.err);
  const t = JSON.parse(tdx.out);
  assert.equal(t.tee, 'tdx');
  assert.equal(t.claims.measurements.mrtd, '7d'.repeat(48));
  assert.equal(t.claims.measurements.rtmr3, 'a3'.repeat(48));
  const human = await run(['verify', join(dir, 'sgx.dat'), ...base]);
  assert.match(human.out, /^OK .*verified sgx, TCB UpToDate/);
});

test('coffer verify --nonce: matching SHA-256 nonce passes, another nonce is NONCE_MISMATCH (exit 1)', async () => {
  const { dir, base } = await fixture();
  assert.equal((await run(['verify', join(dir, 'sgx.dat'), join(dir, 'tdx.dat'), ...base, '--nonce', nonce.toString('hex')])).code, 0);
  const bad = await run(['verify', join(dir, 'sgx.dat'), ...base, '--nonce', 'abcd', '--json']);
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.out).errors[0].code, 'NONCE_MISMATCH');
});

test('coffer verify: debug enclaves and TDs are rejected by the default policy; --policy judges TCB and measurements', async () => {
  const { dir, base } = await fixture();
  for (const f of ['sgx-debug.dat', 'tdx-debug.dat']) {
    const r = await run(['verify', join(dir, f), ...base, '--json']);
    assert.equal(r.code, 1, f);
    const l = JSON.parse(r.out);
    assert.equal(l.claims.debug, true);
    assert.equal(l.errors[0].code, 'DEBUG_FORBIDDEN');
  }
  assert.equal((await run(['verify', join(dir, 'tdx.dat'), ...base, '--policy', join(dir, 'strict.yaml')])).code, 0);
  const wrong = await run(['verify', join(dir, 'sgx.dat'), ...base, '--policy', join(dir, 'wrong.yaml'), '--json']);
  assert.equal(wrong.code, 1);
  assert.equal(JSON.parse(wrong.out).errors[0].code, 'MEASUREMENT_MISMATCH');
});

test('coffer verify: rejections exit 1 with a named check; usage and I/O errors exit 2', async () => {
  const { w, dir, base } = await fixture();
  // without --trust-anchor the pinned Intel root is used: the test PKI chain does not reach it
  const noAnchor = await run(['verify', join(dir, 'sgx.dat'), '--collateral', base[1], '--at', w.at.toISOString(), '--json']);
  assert.equal(noAnchor.code, 1);
  assert.equal(JSON.parse(noAnchor.out).errors[0].code, 'PCK_CHAIN_INVALID');
  const late = await run(['verify', join(dir, 'sgx.dat'), ...base.slice(0, 4), '--at', '2099-01-01T00:00:00Z']);
  assert.equal(late.code, 1);
  assert.match(late.out, /REJECTED .*\n {2}[A-Z_]+: /);
  const noColl = await run(['verify', join(dir, 'sgx.dat'), ...base.slice(2), '--json']);
  assert.equal(noColl.code, 1);
  assert.equal(JSON.parse(noColl.out).errors[0].code, 'COLLATERAL_MISSING');
  assert.equal((await run(['verify', join(dir, 'sgx.dat'), '--collateral', join(dir, 'nope')])).code, 2);
  assert.equal((await run(['verify', join(dir, 'sgx.dat'), ...base, '--policy', join(dir, 'nope.yaml')])).code, 2);
  assert.equal((await run(['verify', join(dir, 'missing.dat'), ...base])).code, 2);
  assert.equal((await run(['verify', join(dir, 'sgx.dat'), '--tee', 'nope'])).code, 2);
});

test('coffer verify on the real dcap-qvl SGX quote with its QuoteCollateralV3 JSON', { skip: haveVectors ? false : 'vectors absent' }, async () => {
  const r = await run([
    'verify', join(vectorsDir, 'sgx/dcap-qvl_sgx_quote.bin'),
    '--collateral', join(vectorsDir, 'collateral/dcap-qvl_sgx_quote_collateral.json'),
    '--at', '2025-07-01T00:00:00Z', '--json',
  ]);
  assert.equal(r.code, 0, r.out);
  const l = JSON.parse(r.out);
  assert.equal(l.tcbStatus, 'ConfigurationAndSWHardeningNeeded');
  assert.deepEqual(l.advisories, ['INTEL-SA-00289', 'INTEL-SA-00615']);
});
