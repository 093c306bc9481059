import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHclReport, serializeHclReport, hclReportType } from '../../../src/tee/azure/abi/hcl-report.js';
import { parseRuntimeData } from '../../../src/tee/azure/abi/runtime-data.js';
import { parseCompositeEvidence, pcrListToFile, sniffComposite } from '../../../src/tee/azure/abi/evidence.js';
import { parsePcrsFile } from '../../../src/tee/tpm/abi/pcrs.js';
import { CofferError } from '../../../src/tee/common/errors.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';
import { PCRS, runtimeJson, snpComposite } from '../../support/azure-composite.js';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CofferError, `not a CofferError: ${String(e)}`);
    return e.code;
  }
  return 'NO_ERROR';
}

test('real HCL reports round-trip through parse/serialize (padding to the NV size kept)', { skip: vectorsSkip }, () => {
  for (const f of ['tpm/azure/trustee_az-snp-vtpm_hcl-report.bin', 'tpm/azure/trustee_az-tdx-vtpm_hcl-report.bin']) {
    const b = readVector(f);
    const r = parseHclReport(b);
    assert.equal(r.requestType, 2);
    assert.equal(r.hashType, 1);
    assert.equal(r.reportSize, 0x4d4 + r.varData.length);
    assert.deepEqual(serializeHclReport({ ...r, padTo: b.length }), b, f);
    assert.equal(hclReportType(b), r.reportType);
  }
});

test('malformed HCL reports are typed rejections', () => {
  const good = serializeHclReport({ reportType: 'snp', hwReport: new Uint8Array(1184), varData: runtimeJson(), padTo: 2600 });
  assert.equal(parseHclReport(good).varData.length, runtimeJson().length);
  const mut = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    return new Uint8Array(b);
  };
  assert.equal(codeOf(() => parseHclReport(good.subarray(0, 0x4d0))), 'TRUNCATED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => (b[0] = 0x41)))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(3, 0x4c8)))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(0, 0x4cc)))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(5000, 0x4d0)))), 'TRUNCATED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(1, 0x4c0)))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(7, 0x08)))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(1, 0x10)))), 'HCL_REPORT_STATUS');
  assert.equal(codeOf(() => parseHclReport(mut((b) => b.writeUInt32LE(0x7fffffff, 0x4d0)))), 'HCL_REPORT_MALFORMED');
});

test('runtime data: HCLAkPub required and unambiguous, keys well-formed, user-data hex', () => {
  const rd = (o: unknown) => new Uint8Array(Buffer.from(JSON.stringify(o)));
  const ok = parseRuntimeData(runtimeJson(undefined, 'abcd'));
  assert.equal(ok.userData, 'abcd');
  assert.equal(ok.ak.asymmetricKeyType, 'rsa');
  assert.equal(ok.akJwk.kty, 'RSA');
  assert.deepEqual(Object.keys(ok.akJwk), ['kty', 'n', 'e']);
  const ak = JSON.parse(Buffer.from(runtimeJson()).toString()).keys[0];
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [ak, ak] }))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [{ ...ak, kid: 'X' }] }))), 'HCL_AK_MISSING');
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [{ ...ak, n: 42 }] }))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [{ ...ak, n: 'AA' }] }))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [{ ...ak, kty: 'oct' }] }))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(rd({ keys: [ak], 'user-data': 'xyz' }))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(rd([1]))), 'HCL_RUNTIME_DATA_MALFORMED');
  assert.equal(codeOf(() => parseRuntimeData(new Uint8Array([0xff, 0xfe]))), 'HCL_RUNTIME_DATA_MALFORMED');
});

test('Trustee evidence JSON: v0 and malformed fields are typed; the PCR list becomes a marshaled file', () => {
  const c = snpComposite();
  const doc = JSON.parse(Buffer.from(c.json).toString());
  const j = (o: unknown) => new Uint8Array(Buffer.from(JSON.stringify(o)));
  const ev = parseCompositeEvidence(c.json);
  assert.equal(ev.kind, 'snp');
  assert.equal(ev.format, 'trustee-v1');
  assert.deepEqual(ev.hcl, c.hcl);
  // standard base64 is read too
  assert.deepEqual(parseCompositeEvidence(j({ ...doc, hcl_report: Buffer.from(c.hcl).toString('base64') })).hcl, c.hcl);
  assert.equal(codeOf(() => parseCompositeEvidence(j({ quote: {}, report: [], vcek: '' }))), 'AZ_EVIDENCE_UNSUPPORTED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, hcl_report: 'not base64!' }))), 'AZ_EVIDENCE_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, hcl_report: 'AAAA' }))), 'HCL_REPORT_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, tpm_quote: { ...doc.tpm_quote, message: 'xyz' } }))), 'AZ_EVIDENCE_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, tpm_quote: { ...doc.tpm_quote, pcrs: ['00'] } }))), 'AZ_EVIDENCE_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, tpm_quote: { ...doc.tpm_quote, pcrs: [] } }))), 'AZ_EVIDENCE_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, tpm_quote: 5 }))), 'AZ_EVIDENCE_MALFORMED');
  assert.equal(codeOf(() => parseCompositeEvidence(j({ ...doc, td_quote: doc.vcek }))), 'AZ_EVIDENCE_MALFORMED'); // SNP HCL in TDX evidence
  assert.equal(codeOf(() => parseCompositeEvidence(new Uint8Array(Buffer.from('{"version":1,')))), 'AZ_EVIDENCE_MALFORMED');
  const values = parsePcrsFile(pcrListToFile(PCRS));
  assert.equal(Buffer.from(values.get(0x000b)!.get(23)!).toString('hex'), PCRS[23]);
  assert.equal(sniffComposite(new Uint8Array(Buffer.from(' \n{"hcl_report":"","tpm_quote":{},"vcek":""}'))), 'snp');
  assert.equal(sniffComposite(new Uint8Array(Buffer.from('{"hcl_report":"","tpm_quote":{},"td_quote":""}'))), 'tdx');
  assert.equal(sniffComposite(new Uint8Array(Buffer.from('{"evidence":"x"}'))), undefined);
});
