import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { parseHclReport } from '../../../src/tee/azure/abi/hcl-report.js';
import { parseRuntimeData } from '../../../src/tee/azure/abi/runtime-data.js';
import { checkRuntimeDataBinding, checkTdReportConsistency } from '../../../src/tee/azure/verify/binding.js';
import { parseQuote } from '../../../src/tee/dcap/quote.js';
import { parseTdReport } from '../../../src/tee/tdx/td-report.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';

const registry = createVerifierRegistry();
const AT = new Date('2025-06-01T00:00:00Z'); // inside the VCEK window 2025-01-28 .. 2032-01-28
const CHALLENGE = new Uint8Array(Buffer.from('challenge'));
const SNP_JSON = 'tpm/azure/trustee_az-snp-vtpm_evidence-v1.json';

test('real Trustee az-snp-vtpm evidence v1 verifies: SNP report (VCEK → pinned AMD Milan), binding, HCLAkPub quote, 24 PCRs', { skip: vectorsSkip }, async () => {
  const r = await verifyEvidence(readVector(SNP_JSON), { registry, at: AT, nonce: CHALLENGE });
  assert.deepEqual(r.errors, []);
  assert.equal(r.tee, 'az-snp-vtpm');
  const c = r.claims!;
  assert.equal(c.reportData, Buffer.from(CHALLENGE).toString('hex'));
  assert.equal(Object.keys(c.measurements).filter((k) => k.startsWith('pcrsha256_')).length, 24);
  const doc = JSON.parse(Buffer.from(readVector(SNP_JSON)).toString('utf8'));
  for (let i = 0; i < 24; i++) assert.equal(c.measurements[`pcrsha256_${i}`], doc.tpm_quote.pcrs[i]);
  assert.equal(c.measurements.measurement.length, 96);
  assert.equal(c.platform.productLine, 'Milan');
  assert.equal(c.platform.akTrust, 'tee-report');
  assert.equal(c.platform.vmUniqueId, '26F8BC30-774E-4290-8E7A-535F3B672AEE');
  const raw = c.raw as { snp: { vmpl: number; version: number; reportData: string }; hcl: { runtimeDataHash: string }; tpm: { pcrSelection: unknown } };
  assert.equal(raw.snp.vmpl, 0);
  assert.equal(raw.snp.version, 3);
  assert.equal(raw.snp.reportData, raw.hcl.runtimeDataHash + '00'.repeat(32));
  assert.deepEqual(raw.tpm.pcrSelection, [{ bank: 'sha256', pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
  // auto-detection gives the same
  const auto = await verifyEvidence(readVector(SNP_JSON), { registry, at: AT });
  assert.equal(auto.tee, 'az-snp-vtpm');
  assert.equal(auto.verified, true);
});

test('real az-snp-vtpm evidence: wrong nonce, outside the VCEK window, tampered pieces are rejected with codes', { skip: vectorsSkip }, async () => {
  const text = Buffer.from(readVector(SNP_JSON)).toString('utf8');
  const doc = JSON.parse(text);
  const run = (d: unknown, o: Record<string, unknown> = {}) => verifyEvidence(new Uint8Array(Buffer.from(JSON.stringify(d))), { registry, at: AT, nonce: CHALLENGE, ...o });
  assert.equal((await run(doc, { nonce: new Uint8Array(Buffer.from('egnellahc')) })).errors[0].code, 'NONCE_MISMATCH');
  assert.equal((await run(doc, { at: new Date('2024-06-01Z') })).errors[0].code, 'CERT_NOT_YET_VALID');
  const hcl = Buffer.from(doc.hcl_report, 'base64url');
  const flip = (off: number) => {
    const h = Buffer.from(hcl);
    h[off] ^= 1;
    return { ...doc, hcl_report: h.toString('base64url') };
  };
  assert.equal((await run(flip(0x20 + 0x90))).errors[0].code, 'REPORT_SIGNATURE_INVALID'); // SNP measurement
  assert.equal((await run(flip(0x4d4 + 200))).errors[0].code, 'AZ_RUNTIME_DATA_MISMATCH'); // inside HCLAkPub.n
  const pcrs = [...doc.tpm_quote.pcrs];
  pcrs[8] = 'ff'.repeat(32);
  assert.equal((await run({ ...doc, tpm_quote: { ...doc.tpm_quote, pcrs } })).errors[0].code, 'TPM_PCR_DIGEST_MISMATCH');
  const sig = Buffer.from(doc.tpm_quote.signature, 'hex');
  sig[10] ^= 1;
  assert.equal((await run({ ...doc, tpm_quote: { ...doc.tpm_quote, signature: sig.toString('hex') } })).errors[0].code, 'TPM_SIGNATURE_INVALID');
  // the VCEK of the other Azure report does not sign this one
  const otherVcek = Buffer.from(readVector('tpm/azure/trustee_az-snp-vtpm_vcek.pem')).toString('utf8').split('-----END CERTIFICATE-----')[0];
  const der = Buffer.from(otherVcek.replace(/-----BEGIN CERTIFICATE-----|\s/g, ''), 'base64');
  assert.equal((await run({ ...doc, vcek: der.toString('base64url') })).verified, false);
});

test('real Azure HCL reports parse; the runtime-data hash is the report data (SNP report; TDX TD quote and TDREPORT)', { skip: vectorsSkip }, async () => {
  const snp = parseHclReport(readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin'));
  assert.equal(snp.reportType, 'snp');
  assert.equal(snp.hwReport.length, 1184);
  assert.equal(snp.varData.length, 1110);
  checkRuntimeDataBinding(snp, snp.hwReport.subarray(0x50, 0x90), 'SNP');
  assert.deepEqual(parseRuntimeData(snp.varData).keyIds, ['HCLAkPub', 'HCLEkPub']);

  const tdxHcl = parseHclReport(readVector('tpm/azure/trustee_az-tdx-vtpm_hcl-report.bin'));
  assert.equal(tdxHcl.reportType, 'tdx');
  assert.equal(tdxHcl.version, 2);
  assert.equal(tdxHcl.hwReport.length, 1024);
  const q = parseQuote(readVector('tpm/azure/trustee_az-tdx-vtpm_td-quote.bin'));
  const rd = parseTdReport(q.body).reportData;
  checkRuntimeDataBinding(tdxHcl, rd, 'TD quote');
  checkTdReportConsistency(tdxHcl, rd);
});

test('real Azure TDX parts as Trustee az-tdx-vtpm v1 JSON: detected, and rejected for want of DCAP collateral (none shipped)', { skip: vectorsSkip }, async () => {
  const tq = JSON.parse(Buffer.from(readVector('tpm/azure/trustee_az-tdx-vtpm_tpm-quote-v1.json')).toString('utf8'));
  const json = new Uint8Array(Buffer.from(JSON.stringify({
    version: 1,
    tpm_quote: tq,
    hcl_report: Buffer.from(readVector('tpm/azure/trustee_az-tdx-vtpm_hcl-report.bin')).toString('base64url'),
    td_quote: Buffer.from(readVector('tpm/azure/trustee_az-tdx-vtpm_td-quote.bin')).toString('base64url'),
  })));
  const r = await verifyEvidence(json, { registry, at: AT, nonce: CHALLENGE });
  assert.equal(r.tee, 'az-tdx-vtpm');
  assert.equal(r.verified, false);
  assert.equal(r.errors[0].code, 'COLLATERAL_MISSING', JSON.stringify(r.errors));
});

test('the standalone tpm-quote.msg/.sig pair with hcl-report.bin (files form): the SNP side holds, the quote is not signed by its HCLAkPub', { skip: vectorsSkip }, async () => {
  const r = await verifyEvidence(
    {
      evidence: readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin'),
      attachments: { quote: readVector('tpm/azure/trustee_az-snp-vtpm_tpm-quote.msg'), signature: readVector('tpm/azure/trustee_az-snp-vtpm_tpm-quote.sig') },
    },
    { registry, at: new Date('2024-01-01Z'), snp: { certs: [readVector('tpm/azure/trustee_az-snp-vtpm_vcek.pem')] } },
  );
  assert.equal(r.tee, 'az-snp-vtpm');
  // PROVENANCE claims this pair verifies with HCLAkPub; it does not, so the composite must reject it.
  assert.equal(r.errors[0].code, 'TPM_SIGNATURE_INVALID', JSON.stringify(r.errors));
});
