import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vectorsSkip, readVector } from '../../support/vectors.js';
import { decodePb, pbBytes } from '../../support/protobuf.js';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { parseAttest, serializeAttest } from '../../../src/tee/tpm/abi/attest.js';
import { hashAlgById } from '../../../src/tee/tpm/abi/constants.js';
import { parsePublic, serializePublic } from '../../../src/tee/tpm/abi/public.js';
import { parseSignature, serializeSignature } from '../../../src/tee/tpm/abi/signature.js';
import { toHex, fromHex } from '../../../src/tee/common/hex.js';

const registry = createVerifierRegistry();

/** The runtime-data JSON of an Azure HCL report (variable data at 0x4D4, size at 0x4D0). */
function hclAkJwk(hcl: Uint8Array): Uint8Array {
  const n = Buffer.from(hcl).readUInt32LE(0x4d0);
  const json = JSON.parse(Buffer.from(hcl.subarray(0x4d4, 0x4d4 + n)).toString('utf8')) as { keys: { kid: string }[] };
  const jwk = json.keys.find((k) => k.kid === 'HCLAkPub');
  assert.ok(jwk);
  return new Uint8Array(Buffer.from(JSON.stringify(jwk)));
}

test('Azure standalone vTPM quote message parses and round-trips (its signature matches no AK in the vectors)', { skip: vectorsSkip }, async () => {
  const msg = readVector('tpm/azure/trustee_az-snp-vtpm_tpm-quote.msg');
  const a = parseAttest(msg);
  assert.deepEqual(serializeAttest(a), msg);
  assert.equal(Buffer.from(a.extraData).toString('latin1'), 'challenge');
  assert.deepEqual(a.attested.kind === 'quote' && a.attested.pcrSelect, [{ hash: 0x000b, sizeofSelect: 3, pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 14] }]);
  // PROVENANCE says it verifies with the HCL report's HCLAkPub; it does not (checked: RSASSA and PSS, both HCL
  // reports, AK and EK), so Coffer must reject it rather than accept an unbound signature.
  const r = await verifyEvidence(
    { evidence: msg, attachments: { signature: readVector('tpm/azure/trustee_az-snp-vtpm_tpm-quote.sig'), ak: hclAkJwk(readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin')) } },
    { registry },
  );
  assert.equal(r.errors[0].code, 'TPM_SIGNATURE_INVALID');
});

for (const [name, file, hclFile] of [
  ['SNP', 'tpm/azure/trustee_az-snp-vtpm_evidence-v1.json', undefined],
  ['TDX', 'tpm/azure/trustee_az-tdx-vtpm_tpm-quote-v1.json', 'tpm/azure/trustee_az-tdx-vtpm_hcl-report.bin'],
] as const) test(`Azure ${name} vTPM quote JSON: 24 SHA-256 PCRs verify with HCLAkPub (PCR digest recomputed)`, { skip: vectorsSkip }, async () => {
  const doc = JSON.parse(Buffer.from(readVector(file)).toString('utf8')) as {
    hcl_report?: string;
    tpm_quote?: { message: string; signature: string; pcrs: string[] };
    message?: string; signature?: string; pcrs?: string[];
  };
  const ev = { tpm_quote: doc.tpm_quote ?? { message: doc.message!, signature: doc.signature!, pcrs: doc.pcrs! } };
  const hcl = hclFile ? readVector(hclFile) : new Uint8Array(Buffer.from(doc.hcl_report!, 'base64url'));
  const msg = fromHex(ev.tpm_quote.message);
  const pcrs = new Uint8Array(Buffer.from(JSON.stringify({ sha256: Object.fromEntries(ev.tpm_quote.pcrs.map((p, i) => [i, p])) })));
  const att = { signature: fromHex(ev.tpm_quote.signature), ak: hclAkJwk(hcl), pcrs };
  const r = await verifyEvidence({ evidence: msg, attachments: att }, { registry, nonce: parseAttest(msg).extraData });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.claims!.measurements.pcrsha256_0, ev.tpm_quote.pcrs[0]);
  const tampered = JSON.stringify({ sha256: Object.fromEntries(ev.tpm_quote.pcrs.map((p, i) => [i, i === 8 ? 'ff'.repeat(32) : p])) });
  const bad = await verifyEvidence({ evidence: msg, attachments: { ...att, pcrs: new Uint8Array(Buffer.from(tampered)) } }, { registry });
  assert.equal(bad.errors[0].code, 'TPM_PCR_DIGEST_MISMATCH');
});

test('GCE Shielded VM attestation (go-tpm-tools, nonce 9009): every bank quote, PCRs and event log verify', { skip: vectorsSkip }, async () => {
  const a = decodePb(readVector('tpm/go-tpm-tools_gce-cos-85-nonce9009.pb'));
  const akPub = pbBytes(a, 1)!;
  const eventlog = pbBytes(a, 3)!;
  assert.deepEqual(serializePublic(parsePublic(akPub)), akPub);
  const quotes = a.get(2)! as Uint8Array[];
  assert.ok(quotes.length >= 2);
  const nonce = fromHex('9009');
  for (const qb of quotes) {
    const q = decodePb(qb);
    const attest = pbBytes(q, 1)!;
    const sig = pbBytes(q, 2)!;
    assert.deepEqual(serializeSignature(parseSignature(sig)), sig);
    const pcrsPb = decodePb(pbBytes(q, 3)!);
    const bank = hashAlgById(Number(pcrsPb.get(1)![0]))!;
    const map: Record<string, string> = {};
    for (const e of pcrsPb.get(2)! as Uint8Array[]) {
      const kv = decodePb(e);
      map[String(kv.get(1)?.[0] ?? 0n)] = toHex(pbBytes(kv, 2)!);
    }
    const pcrs = new Uint8Array(Buffer.from(JSON.stringify({ [bank.name]: map })));
    const r = await verifyEvidence({ evidence: attest, attachments: { signature: sig, ak: akPub, pcrs, eventlog } }, { registry, nonce });
    assert.equal(r.verified, true, `${bank.name}: ${JSON.stringify(r.errors)}`);
    const replayed = (r.claims!.raw.eventLog as { replayedPcrs: string[] }).replayedPcrs;
    assert.ok(replayed.includes(`${bank.name}:0`) && replayed.includes(`${bank.name}:7`), replayed.join(' '));
    const wrong = await verifyEvidence({ evidence: attest, attachments: { signature: sig, ak: akPub, pcrs, eventlog } }, { registry, nonce: fromHex('9010') });
    assert.equal(wrong.errors[0].code, 'NONCE_MISMATCH');
  }
});
