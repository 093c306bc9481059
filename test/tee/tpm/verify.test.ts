import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, constants, createHash, type KeyObject } from 'node:crypto';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { serializeAttest, type TpmsAttest } from '../../../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_ST, TPM_GENERATED_VALUE } from '../../../src/tee/tpm/abi/constants.js';
import { serializeSignature } from '../../../src/tee/tpm/abi/signature.js';
import { serializePublic2b, type TpmtPublic } from '../../../src/tee/tpm/abi/public.js';
import { selection, serializePcrsMarshaled, type PcrValues } from '../../../src/tee/tpm/abi/pcrs.js';

/**
 * A software signer standing in for the TPM where the behaviour under test is the verifier's handling of schemes
 * and attributes a real AK would not produce (RSAPSS, SHA-1, unrestricted keys, non-quote attestations).
 */
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const registry = createVerifierRegistry();
const sel = selection([[TPM_ALG.SHA256, [0, 7]]]);
const values: PcrValues = new Map([[TPM_ALG.SHA256, new Map([[0, new Uint8Array(32).fill(0xa0)], [7, new Uint8Array(32).fill(0xa7)]])]]);
const pcrDigest = new Uint8Array(createHash('sha256').update(values.get(TPM_ALG.SHA256)!.get(0)!).update(values.get(TPM_ALG.SHA256)!.get(7)!).digest());

function akPublic(key: KeyObject, attrs: number): Uint8Array {
  const n = new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).n!, 'base64url'));
  const p: TpmtPublic = { type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: attrs, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL }, scheme: { alg: TPM_ALG.NULL }, keyBits: 2048, exponent: 0, modulus: n };
  return serializePublic2b(p);
}

function quote(over: Partial<TpmsAttest> = {}): Uint8Array {
  return serializeAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: new Uint8Array(34),
    extraData: Uint8Array.of(0xab),
    clockInfo: { clock: 1n, resetCount: 0, restartCount: 0, safe: true },
    firmwareVersion: 1n,
    attested: { kind: 'quote', pcrSelect: sel, pcrDigest },
    ...over,
  });
}

function rsaSig(msg: Uint8Array, alg: number, hash: 'sha256' | 'sha1' | 'sha384'): Uint8Array {
  const pss = alg === TPM_ALG.RSAPSS;
  const sig = sign(hash, msg, { key: privateKey, padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING, saltLength: pss ? 32 : undefined });
  const h = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 }[hash];
  return serializeSignature({ sigAlg: alg as typeof TPM_ALG.RSASSA, hash: h, sig: new Uint8Array(sig) });
}

const pcrs = serializePcrsMarshaled(sel, values);
const ak = akPublic(publicKey, 0x00050072);

async function check(evidence: Uint8Array, signature: Uint8Array, akFile = ak) {
  return verifyEvidence({ evidence, attachments: { signature, ak: akFile, pcrs } }, { registry, tee: 'tpm', nonce: Uint8Array.of(0xab) });
}

test('RSAPSS and RSASSA with SHA-256/384 verify; SHA-1 signatures are refused', async () => {
  const q = quote();
  for (const [alg, h] of [[TPM_ALG.RSAPSS, 'sha256'], [TPM_ALG.RSASSA, 'sha384'], [TPM_ALG.RSAPSS, 'sha384']] as const) {
    const r = await check(q, rsaSig(q, alg, h));
    // pcrDigest uses the signature's hash: with SHA-384 the SHA-256 digest above must not match.
    if (h === 'sha256') assert.equal(r.verified, true, JSON.stringify(r.errors));
    else assert.equal(r.errors[0]?.code, 'TPM_PCR_DIGEST_MISMATCH');
  }
  assert.equal((await check(q, rsaSig(q, TPM_ALG.RSASSA, 'sha1'))).errors[0].code, 'TPM_UNSUPPORTED_ALG');
  // A PSS signature presented as PKCS#1 v1.5 fails.
  const pss = rsaSig(q, TPM_ALG.RSAPSS, 'sha256');
  pss[1] = TPM_ALG.RSASSA;
  assert.equal((await check(q, pss)).errors[0].code, 'TPM_SIGNATURE_INVALID');
});

test('an unrestricted key cannot vouch for a quote; a signed certify is not a quote', async () => {
  const q = quote();
  const r = await check(q, rsaSig(q, TPM_ALG.RSASSA, 'sha256'), akPublic(publicKey, 0x00040072));
  assert.equal(r.errors[0].code, 'TPM_AK_NOT_RESTRICTED');
  const c = quote({ type: TPM_ST.ATTEST_CERTIFY, attested: { kind: 'certify', name: new Uint8Array(34), qualifiedName: new Uint8Array(34) } });
  assert.equal((await check(c, rsaSig(c, TPM_ALG.RSASSA, 'sha256'))).errors[0].code, 'TPM_NOT_A_QUOTE');
});

test('auto-detection picks the TPM verifier for TPMS_ATTEST and TPM2B_ATTEST; an event log needs PCR values', async () => {
  const q = quote();
  const sig = rsaSig(q, TPM_ALG.RSASSA, 'sha256');
  const r = await verifyEvidence({ evidence: q, attachments: { signature: sig, ak, pcrs } }, { registry });
  assert.equal(r.tee, 'tpm');
  assert.equal(r.verified, true);
  const wrapped = Uint8Array.from([q.length >> 8, q.length & 0xff, ...q]);
  assert.equal((await verifyEvidence({ evidence: wrapped, attachments: { signature: sig, ak, pcrs } }, { registry })).verified, true);
  const noPcrs = await verifyEvidence({ evidence: q, attachments: { signature: sig, ak, eventlog: Uint8Array.of(1) } }, { registry });
  assert.equal(noPcrs.errors[0].code, 'TPM_PCRS_MISSING');
  const required = await verifyEvidence({ evidence: q, attachments: { signature: sig, ak } }, { registry, tpm: { requirePcrs: true } });
  assert.equal(required.errors[0].code, 'TPM_PCRS_MISSING');
  const digestOnly = await verifyEvidence({ evidence: q, attachments: { signature: sig, ak } }, { registry });
  assert.equal(digestOnly.verified, true);
  assert.deepEqual(Object.keys(digestOnly.claims!.measurements), ['pcrDigest']);
  assert.ok(digestOnly.claims!.warnings.some((w) => w.startsWith('PCR_VALUES_ABSENT')));
});

test('tee-report AK binding: the composite verifier decides', async () => {
  const q = quote();
  const sig = rsaSig(q, TPM_ALG.RSASSA, 'sha256');
  const input = { evidence: q, attachments: { signature: sig, ak, pcrs } };
  const ok = await verifyEvidence(input, { registry, tpm: { akTrust: { kind: 'tee-report', description: 'test report', bind: async () => ({ platform: { reportId: 'r1' } }) } } });
  assert.equal(ok.verified, true);
  assert.equal(ok.claims!.platform.akBoundBy, 'test report');
  assert.equal(ok.claims!.platform.reportId, 'r1');
  const { VerificationError } = await import('../../../src/tee/common/errors.js');
  const no = await verifyEvidence(input, { registry, tpm: { akTrust: { kind: 'tee-report', description: 'x', bind: async () => { throw new VerificationError('AK_NOT_BOUND', 'report data does not commit to the AK'); } } } });
  assert.equal(no.errors[0].code, 'AK_NOT_BOUND');
});
