import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { vectorsSkip, readVector, vectorsDir } from '../../support/vectors.js';
import { openDcapCollateral } from '../../../src/tee/dcap/collateral.js';
import { parseQuote } from '../../../src/tee/dcap/quote.js';
import { parseEnclaveReport } from '../../../src/tee/dcap/enclave-report.js';
import { parseTdReport } from '../../../src/tee/tdx/td-report.js';

// Expected outcomes and "at" dates: ../shared/vectors/PROVENANCE.md.
const AT_2025 = new Date('2025-07-01T00:00:00Z');
const AT_2026 = new Date('2026-03-01T00:00:00Z');

async function verifyVector(quote: string, collateral: string, at: Date) {
  const provider = await openDcapCollateral(join(vectorsDir, collateral));
  return verifyEvidence(readVector(quote), { at, dcap: { provider } });
}

test('dcap-qvl SGX v3 quote: ConfigurationAndSWHardeningNeeded with INTEL-SA-00289, INTEL-SA-00615', { skip: vectorsSkip }, async () => {
  const r = await verifyVector('sgx/dcap-qvl_sgx_quote.bin', 'collateral/dcap-qvl_sgx_quote_collateral.json', AT_2025);
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.tee, 'sgx');
  assert.equal(r.tcbStatus, 'ConfigurationAndSWHardeningNeeded');
  assert.deepEqual(r.advisories, ['INTEL-SA-00289', 'INTEL-SA-00615']);
  assert.equal(r.claims!.platform.fmspc, '00A067110000');
  assert.equal(r.claims!.platform.pckCaType, 'processor');
  assert.equal(r.claims!.debug, false);
  assert.equal(r.claims!.measurements.mrenclave.length, 64);
});

test('dcap-qvl TDX v4 quote: UpToDate, no advisories', { skip: vectorsSkip }, async () => {
  const r = await verifyVector('tdx/dcap-qvl_tdx_quote_v4.bin', 'collateral/dcap-qvl_tdx_quote_collateral.json', AT_2025);
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.tee, 'tdx');
  assert.equal(r.tcbStatus, 'UpToDate');
  assert.deepEqual(r.advisories, []);
  assert.equal(r.claims!.platform.fmspc, 'B0C06F000000');
  assert.equal(r.claims!.platform.pckCaType, 'platform');
  for (const m of ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mrseam', 'mrsignerseam', 'mrconfigid', 'mrowner', 'mrownerconfig']) {
    assert.equal(r.claims!.measurements[m].length, 96, m);
  }
});

test('dcap-qvl outdated TDX v5 quote: every signature holds but no TCB level matches (TCB_LEVEL_NOT_FOUND)', { skip: vectorsSkip }, async () => {
  const r = await verifyVector('tdx/dcap-qvl_tdx_quote_outdated_v5.bin', 'collateral/dcap-qvl_tdx_quote_outdated_collateral.json', AT_2026);
  assert.equal(r.verified, false);
  assert.equal(r.errors[0].code, 'TCB_LEVEL_NOT_FOUND');
});

test('real vectors outside their collateral window are rejected', { skip: vectorsSkip }, async () => {
  const r = await verifyVector('sgx/dcap-qvl_sgx_quote.bin', 'collateral/dcap-qvl_sgx_quote_collateral.json', new Date('2025-08-01T00:00:00Z'));
  assert.equal(r.verified, false);
  assert.match(r.errors[0].code, /COLLATERAL_EXPIRED|CRL_EXPIRED/);
  // The pinned Intel root is the anchor: a foreign anchor breaks the chain.
  const other = readVector('roots/amd_ask_ark_milan.pem');
  const r2 = await verifyEvidence(readVector('sgx/dcap-qvl_sgx_quote.bin'), {
    at: AT_2025,
    trustAnchors: [other],
    dcap: { provider: await openDcapCollateral(join(vectorsDir, 'collateral/dcap-qvl_sgx_quote_collateral.json')) },
  });
  assert.equal(r2.errors[0].code, 'PCK_CHAIN_INVALID');
});

test('real collateral split into a PCS directory (files named arbitrarily) verifies the same', { skip: vectorsSkip }, async () => {
  const j = JSON.parse(Buffer.from(readVector('collateral/dcap-qvl_tdx_quote_collateral.json')).toString('utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'coffer-pcs-'));
  try {
    writeFileSync(join(dir, '1'), `{"tcbInfo":${j.tcb_info},"signature":"${j.tcb_info_signature}"}`);
    writeFileSync(join(dir, '2'), `{"enclaveIdentity":${j.qe_identity},"signature":"${j.qe_identity_signature}"}`);
    writeFileSync(join(dir, '3'), Buffer.from(j.root_ca_crl, 'hex'));
    writeFileSync(join(dir, '4'), j.pck_crl); // hex text, as a PCCS serves it
    writeFileSync(join(dir, '5'), j.tcb_info_issuer_chain);
    writeFileSync(join(dir, '6'), j.pck_crl_issuer_chain);
    const provider = await openDcapCollateral(dir);
    const r = await verifyEvidence(readVector('tdx/dcap-qvl_tdx_quote_v4.bin'), { at: AT_2025, dcap: { provider } });
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    assert.equal(r.tcbStatus, 'UpToDate');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('trustee Occlum SGX and TDX v4 quotes parse with debug=true; the TDX v5 (TD 1.5) one has debug=false', { skip: vectorsSkip }, async () => {
  const occ = parseQuote(readVector('sgx/trustee_occlum_quote_debug.dat'));
  assert.equal(occ.version, 3);
  assert.equal(parseEnclaveReport(occ.body).debug, true);
  const td4 = parseQuote(readVector('tdx/trustee_tdx_quote_4.dat'));
  assert.equal(td4.version, 4);
  assert.equal(parseTdReport(td4.body).debug, true);
  const td5 = parseQuote(readVector('tdx/trustee_tdx_quote_5.dat'));
  assert.equal(td5.version, 5);
  assert.equal(td5.bodyType, 3); // TD 1.5 body
  assert.equal(parseTdReport(td5.body).debug, false); // this one is a production TD (TD_ATTRIBUTES 0000001000000000)
  // No collateral ships with them: verification is a typed COLLATERAL_MISSING, never a pass.
  const r = await verifyEvidence(readVector('tdx/trustee_tdx_quote_4.dat'), { registry: createVerifierRegistry(), at: AT_2025 });
  assert.equal(r.verified, false);
  assert.equal(r.errors[0].code, 'COLLATERAL_MISSING');
});

test('trustee TDX v4 quote: the quote and QE report signatures and the PCK chain verify (as PROVENANCE records)', { skip: vectorsSkip }, async () => {
  const { verify, createPublicKey, createHash, X509Certificate } = await import('node:crypto');
  const q = parseQuote(readVector('tdx/trustee_tdx_quote_4.dat'));
  const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), Buffer.from([4]), q.attestKey]);
  const ak = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  assert.ok(verify('sha256', q.signedData, { key: ak, dsaEncoding: 'ieee-p1363' }, q.signature));
  const pem = Buffer.from(q.certData).toString('latin1');
  const chain = [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
  const intel = new X509Certificate(readVector('roots/Intel_SGX_RootCA.der'));
  for (let i = 0; i + 1 < chain.length; i++) assert.ok(chain[i].verify(chain[i + 1].publicKey), `chain link ${i}`);
  assert.ok(chain[chain.length - 1].verify(intel.publicKey));
  const leaf = chain[0];
  assert.ok(verify('sha256', q.qeReport, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, q.qeReportSignature));
  const binding = createHash('sha256').update(q.attestKey).update(q.qeAuthData).digest();
  assert.deepEqual(binding, Buffer.from(parseEnclaveReport(q.qeReport).reportData.subarray(0, 32)));
});

test('the pinned Intel SGX Root CA is byte-identical to the published certificate', { skip: vectorsSkip }, async () => {
  const { INTEL_SGX_ROOT_CA_PEM } = await import('../../../src/tee/dcap/constants.js');
  const { pemBlocks } = await import('../../../src/tee/dcap/pki.js');
  assert.deepEqual(Buffer.from(pemBlocks(INTEL_SGX_ROOT_CA_PEM)[0].der), Buffer.from(readVector('roots/Intel_SGX_RootCA.der')));
});
