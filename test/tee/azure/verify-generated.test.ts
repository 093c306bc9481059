import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { verifyEvidence, createVerifierRegistry, type VerificationResult } from '../../../src/index.js';
import { appraise } from '../../../src/policy/appraise.js';
import { TPM_ALG } from '../../../src/tee/tpm/abi/constants.js';
import { selection, serializePcrsSerialized } from '../../../src/tee/tpm/abi/pcrs.js';
import { parseEventLog } from '../../../src/tee/tpm/eventlog/parse.js';
import { replayEventLog } from '../../../src/tee/tpm/eventlog/replay.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';
import { NONCE, PCRS, ak, otherAk, jwkOf, runtimeJson, snpComposite, tdxComposite } from '../../support/azure-composite.js';

const registry = createVerifierRegistry();
const code = (r: VerificationResult) => r.errors[0]?.code;

test('generated az-snp-vtpm (Trustee JSON, test SNP PKI, software AK): verifies with combined claims', async () => {
  const c = snpComposite();
  const r = await verifyEvidence(c.json, { registry, ...c.opts });
  assert.deepEqual(r.errors, []);
  assert.equal(r.tee, 'az-snp-vtpm');
  const cl = r.claims!;
  assert.equal(cl.tee, 'az-snp-vtpm');
  assert.equal(cl.reportData, Buffer.from(NONCE).toString('hex'));
  assert.equal(cl.measurements.measurement, '22'.repeat(48));
  for (let i = 0; i < 24; i++) assert.equal(cl.measurements[`pcrsha256_${i}`], PCRS[i]);
  assert.equal(cl.platform.akTrust, 'tee-report');
  assert.equal(cl.platform.productLine, 'Milan');
  assert.equal(cl.platform.vmUniqueId, '11111111-2222-3333-4444-555555555555');
  assert.equal(cl.svns.vmpl, 0);
  const raw = cl.raw as { snp: { vmpl: number; reportData: string }; tpm: { extraData: string }; hcl: { runtimeDataHash: string; keyIds: string[]; format: string } };
  assert.equal(raw.snp.vmpl, 0);
  assert.equal(raw.hcl.runtimeDataHash, createHash('sha256').update(runtimeJson()).digest('hex'));
  assert.equal(raw.snp.reportData.slice(0, 64), raw.hcl.runtimeDataHash);
  assert.deepEqual(raw.hcl.keyIds, ['HCLAkPub', 'HCLEkPub']);
  assert.equal(raw.hcl.format, 'trustee-v1');
  assert.equal(raw.tpm.extraData, Buffer.from(NONCE).toString('hex'));
  const tpmRaw = cl.raw.tpm as { firmwareVersion: string; qualifiedSigner: string; clockInfo: { clock: string }; pcrSelection: { bank: string; pcrs: number[] }[] };
  assert.equal(tpmRaw.firmwareVersion, '0x2020031200120003');
  assert.equal(tpmRaw.qualifiedSigner, '0b'.repeat(34));
  assert.equal(tpmRaw.clockInfo.clock, '1234');
  assert.deepEqual(tpmRaw.pcrSelection, [{ bank: 'sha256', pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
  // policy/snp.ts reads raw.snp of composite claims
  const a = appraise(cl, { snp: { maxVmpl: 0 }, tees: ['az-snp-vtpm'] });
  // HCLAkPub is a bare JWK: its TPM attributes are unknown, but the SNP report binds it by hardware, so the
  // claims say so as a note (no policy weighs it) and the appraisal is affirming.
  assert.deepEqual(a.failures, []);
  assert.equal(a.status, 'affirming');
  assert.ok(!cl.warnings.some((w) => w.startsWith('AK_ATTRIBUTES_UNKNOWN')));
  assert.ok(cl.notes?.some((w) => w.startsWith('AK_ATTRIBUTES_UNKNOWN')));
  assert.equal(cl.platform.akTrust, 'tee-report');
  assert.equal(appraise(cl, { snp: { signingKeys: ['vlek'] } }).failures[0].code, 'SIGNING_KEY_NOT_ALLOWED');
  const m = appraise(cl, { measurements: { pcrsha256_7: ['00'.repeat(32)] } });
  assert.equal(m.failures[0].code, 'MEASUREMENT_MISMATCH');
});

test('generated az-snp-vtpm, files form: HCL report + quote + signature + tpm2-tools PCR file (+ --ak)', async () => {
  const c = snpComposite();
  const sel = selection([[TPM_ALG.SHA256, PCRS.map((_, i) => i)]]);
  const pcrs = serializePcrsSerialized(sel, new Map([[TPM_ALG.SHA256, new Map(PCRS.map((p, i) => [i, new Uint8Array(Buffer.from(p, 'hex'))]))]]));
  const attachments = { quote: c.quote.message, signature: c.quote.signature, pcrs };
  const opts = { registry, ...c.opts, snp: { certs: [...c.opts.snp.certs, c.vcek] } };
  const r = await verifyEvidence({ evidence: c.hcl, attachments }, opts);
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.tee, 'az-snp-vtpm');
  assert.equal((r.claims!.raw as { hcl: { format: string } }).hcl.format, 'files');
  // the caller names the AK: accepted when it is HCLAkPub, rejected otherwise
  const same = await verifyEvidence({ evidence: c.hcl, attachments: { ...attachments, ak: new Uint8Array(Buffer.from(JSON.stringify(jwkOf(ak.publicKey)))) } }, opts);
  assert.equal(same.verified, true, JSON.stringify(same.errors));
  const pem = new Uint8Array(Buffer.from(otherAk.publicKey.export({ format: 'pem', type: 'spki' }) as string));
  const other = await verifyEvidence({ evidence: c.hcl, attachments: { ...attachments, ak: pem } }, opts);
  assert.equal(code(other), 'AZ_AK_NOT_BOUND');
  // missing pieces are typed
  assert.equal(code(await verifyEvidence({ evidence: c.hcl, attachments: { signature: c.quote.signature, pcrs } }, opts)), 'AZ_QUOTE_MISSING');
  assert.equal(code(await verifyEvidence({ evidence: c.hcl, attachments: { quote: c.quote.message, signature: c.quote.signature } }, opts)), 'TPM_PCRS_MISSING');
  // the VCEK must come from somewhere
  assert.equal(code(await verifyEvidence({ evidence: c.hcl, attachments }, { ...opts, snp: c.opts.snp })), 'CERTS_MISSING');
});

test('az-snp-vtpm failure paths are typed rejections', async () => {
  const cases: [string, Parameters<typeof snpComposite>[0], string, Record<string, unknown>?][] = [
    ['runtime data hash mismatch', { boundData: runtimeJson(otherAk.publicKey) }, 'AZ_RUNTIME_DATA_MISMATCH'],
    ['quote signed by a key other than the bound AK', { signer: otherAk.privateKey }, 'TPM_SIGNATURE_INVALID'],
    ['runtime data binds another AK', { varData: runtimeJson(otherAk.publicKey) }, 'TPM_SIGNATURE_INVALID'],
    ['quote nonce wrong', { extraData: new Uint8Array(Buffer.from('stale-nonce')) }, 'NONCE_MISMATCH'],
    ['bad inner report signature', { badReportKey: true }, 'REPORT_SIGNATURE_INVALID'],
    ['PCR value not the quoted one', { pcrs: PCRS.map((p, i) => (i === 8 ? 'ee'.repeat(32) : p)) }, 'TPM_PCR_DIGEST_MISMATCH'],
    ['fewer PCRs than quoted', { pcrs: PCRS.slice(0, 23) }, 'TPM_PCR_MISSING'],
    ['report from VMPL 2', { vmpl: 2 }, 'AZ_VMPL_INVALID'],
    ['v2 evidence without user-data', { version: 2 }, 'AZ_USER_DATA_MISMATCH'],
    ['v2 user-data not the nonce', { version: 2, varData: runtimeJson(undefined, 'ab'.repeat(32)) }, 'AZ_USER_DATA_MISMATCH'],
    ['unknown evidence version', { version: 7 }, 'AZ_EVIDENCE_UNSUPPORTED'],
    ['runtime data without HCLAkPub', { varData: new Uint8Array(Buffer.from('{"keys":[]}')) }, 'HCL_AK_MISSING'],
    ['runtime data not JSON', { varData: new Uint8Array(Buffer.from('not json')) }, 'HCL_RUNTIME_DATA_MALFORMED'],
  ];
  for (const [name, knobs, want] of cases) {
    const c = snpComposite(knobs);
    const r = await verifyEvidence(c.json, { registry, ...c.opts });
    assert.equal(r.verified, false, name);
    assert.equal(code(r), want, `${name}: ${JSON.stringify(r.errors)}`);
  }
  // extraData may carry the nonce's SHA-384 (Trustee attesters hash the KBS runtime data), as report data may
  const hashed = snpComposite({ extraData: new Uint8Array(createHash('sha384').update(NONCE).digest()) });
  assert.equal((await verifyEvidence(hashed.json, { registry, ...hashed.opts })).verified, true);
  const hashedOther = snpComposite({ extraData: new Uint8Array(createHash('sha384').update('other').digest()) });
  assert.equal(code(await verifyEvidence(hashedOther.json, { registry, ...hashedOther.opts })), 'NONCE_MISMATCH');
  // v2 with the nonce as user-data verifies
  const v2 = snpComposite({ version: 2, varData: runtimeJson(undefined, Buffer.from(NONCE).toString('hex') + '00'.repeat(8)) });
  const ok = await verifyEvidence(v2.json, { registry, ...v2.opts });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  // wrong nonce at the verifier, wrong time, the SNP evidence named as TDX
  const c = snpComposite();
  assert.equal(code(await verifyEvidence(c.json, { registry, ...c.opts, nonce: new Uint8Array([1, 2, 3]) })), 'NONCE_MISMATCH');
  assert.equal(code(await verifyEvidence(c.json, { registry, ...c.opts, at: new Date('2031-01-01Z') })), 'CERT_EXPIRED');
  assert.equal(code(await verifyEvidence(c.json, { registry, ...c.opts, tee: 'az-tdx-vtpm' })), 'AZ_KIND_MISMATCH');
  // without the private ARK the pinned AMD roots reject the test chain
  assert.equal((await verifyEvidence(c.json, { registry, ...c.opts, trustAnchors: undefined })).verified, false);
});

test('generated az-tdx-vtpm (Trustee JSON, test DCAP world TD quote): verifies; binding failures are typed', async () => {
  const c = await tdxComposite();
  const r = await verifyEvidence(c.json, { registry, ...c.opts });
  assert.deepEqual(r.errors, []);
  assert.equal(r.tee, 'az-tdx-vtpm');
  const cl = r.claims!;
  assert.equal(cl.tcbStatus, 'UpToDate');
  assert.equal(cl.measurements.mrtd, '7d'.repeat(48));
  assert.equal(cl.measurements.pcrsha256_23, PCRS[23]);
  assert.ok((cl.raw as { tdx?: unknown }).tdx);
  assert.equal(cl.platform.akTrust, 'tee-report');
  // files form
  const pcrMap = new Uint8Array(Buffer.from(JSON.stringify({ sha256: Object.fromEntries(PCRS.map((p, i) => [i, p])) })));
  const files = await verifyEvidence({ evidence: c.hcl, attachments: { quote: c.quote.message, signature: c.quote.signature, tdQuote: c.tdQuote, pcrs: pcrMap } }, { registry, ...c.opts });
  assert.equal(files.verified, true, JSON.stringify(files.errors));
  assert.equal(files.tee, 'az-tdx-vtpm');
  assert.equal(code(await verifyEvidence({ evidence: c.hcl, attachments: { quote: new Uint8Array(1), signature: new Uint8Array(1) } }, { registry, ...c.opts })), 'AZ_TD_QUOTE_MISSING');

  for (const [name, knobs, want] of [
    ['runtime data hash mismatch', { boundData: runtimeJson(otherAk.publicKey) }, 'AZ_RUNTIME_DATA_MISMATCH'],
    ['TDREPORT disagrees with the TD quote', { tdReportData: new Uint8Array(64).fill(7) }, 'AZ_TDREPORT_MISMATCH'],
    ['bad TD quote signature', { badTdQuote: true }, 'QUOTE_SIGNATURE_INVALID'],
    ['quote nonce wrong', { extraData: new Uint8Array([9]) }, 'NONCE_MISMATCH'],
    ['quote signed by another key', { signer: otherAk.privateKey }, 'TPM_SIGNATURE_INVALID'],
    ['PCR mismatch', { pcrs: PCRS.map((p, i) => (i === 0 ? '00'.repeat(32) : p)) }, 'TPM_PCR_DIGEST_MISMATCH'],
    ['TDX evidence v2 is not a Trustee format', { version: 2 }, 'AZ_EVIDENCE_UNSUPPORTED'],
  ] as const) {
    const t = await tdxComposite(knobs as never);
    const x = await verifyEvidence(t.json, { registry, ...t.opts });
    assert.equal(x.verified, false, name);
    assert.equal(code(x), want, `${name}: ${JSON.stringify(x.errors)}`);
  }
  // TDX evidence without DCAP collateral is a collateral rejection, not a pass
  const none = await verifyEvidence(c.json, { registry, at: c.opts.at, trustAnchors: c.opts.trustAnchors as Uint8Array[] });
  assert.equal(none.verified, false);
});

test('auto-detection: composites are recognised and do not shadow the SNP, TPM or sample verifiers', async () => {
  const c = snpComposite();
  const v = registry.detect({ evidence: c.json });
  assert.equal(v.tee, 'az-snp-vtpm');
  assert.equal(registry.detect({ evidence: c.hcl }).tee, 'az-snp-vtpm');
  assert.equal(registry.detect({ evidence: (await tdxComposite()).json }).tee, 'az-tdx-vtpm');
  assert.equal(registry.detect({ evidence: c.hcl.subarray(0x20, 0x20 + 1184) }).tee, 'snp');
  assert.equal(registry.detect({ evidence: c.quote.message }).tee, 'tpm');
  assert.throws(() => registry.detect({ evidence: new Uint8Array(Buffer.from('{"hcl_report":"x"}')) }), /recognise/);
});

test('az-snp-vtpm with an event log: replayed against the quoted PCRs; a log from another boot is TPM_EVENTLOG_MISMATCH', { skip: vectorsSkip }, async () => {
  const log = readVector('tpm/go-tpm-tools_ubuntu-2404-amd-sevsnp.bin');
  const replay = replayEventLog(parseEventLog(log)).get(TPM_ALG.SHA256)!;
  const pcrs = PCRS.map((p, i) => (replay.get(i) ? Buffer.from(replay.get(i)!).toString('hex') : p));
  const c = snpComposite({ quotedPcrs: pcrs, pcrs });
  const ok = await verifyEvidence({ evidence: c.json, attachments: { eventlog: log } }, { registry, ...c.opts });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  const replayed = ((ok.claims!.raw.tpm as { eventLog: { replayedPcrs: string[] } }).eventLog).replayedPcrs;
  assert.ok(replayed.includes('sha256:0') && replayed.length >= 4, replayed.join(' '));
  const other = await verifyEvidence({ evidence: c.json, attachments: { eventlog: readVector('tpm/go-tpm-tools_cos-101-amd-sev.bin') } }, { registry, ...c.opts });
  assert.equal(code(other), 'TPM_EVENTLOG_MISMATCH');
});
