import { TPM_ALG, TPM_ECC_CURVE } from '../../tee/tpm/abi/constants.js';
import type { TpmtPublic } from '../../tee/tpm/abi/public.js';
import { fromHex } from '../../tee/common/hex.js';

/** PolicySecret(TPM_RH_ENDORSEMENT): the EK authPolicy of the TCG EK Credential Profile (templates L-1/L-2). */
const EK_POLICY = fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
/** fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt. */
const EK_ATTRS = 0x000300b2;
/** fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign. */
const AK_ATTRS = 0x00050072;

export function ekTemplate(kind: 'rsa' | 'ecc'): TpmtPublic {
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: EK_ATTRS, authPolicy: EK_POLICY, symmetric: { alg: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { alg: TPM_ALG.NULL } };
  if (kind === 'rsa') return { ...base, type: TPM_ALG.RSA, keyBits: 2048, exponent: 0, modulus: new Uint8Array(256) };
  return { ...base, type: TPM_ALG.ECC, curveId: TPM_ECC_CURVE.NIST_P256, kdf: { alg: TPM_ALG.NULL }, x: new Uint8Array(32), y: new Uint8Array(32) };
}

/** Restricted signing key for quotes (the go-tpm-tools AK templates): RSASSA-SHA256 / ECDSA-P256-SHA256. */
export function akTemplate(kind: 'rsa' | 'ecc'): TpmtPublic {
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: AK_ATTRS, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL } };
  if (kind === 'rsa') {
    return { ...base, type: TPM_ALG.RSA, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: new Uint8Array(0) };
  }
  return { ...base, type: TPM_ALG.ECC, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curveId: TPM_ECC_CURVE.NIST_P256, kdf: { alg: TPM_ALG.NULL }, x: new Uint8Array(0), y: new Uint8Array(0) };
}

/**
 * The quote helper's AK for workloads: the ECC AK template with a distinct `unique` (a primary's key derives from
 * the seed and the whole template), so it is a different key from the node AK `coffer agent attest` enrols. A pod
 * that asks the helper for quotes over arbitrary report data must not get signatures by the enrolled node AK: with
 * them it could produce node-attestation evidence naming any node. Relying parties pin this AK (enrolling it is
 * safe only where node trust also checks the AK's enrolled attester name against the token's node).
 */
export function workloadAkTemplate(): TpmtPublic {
  const t = akTemplate('ecc');
  return { ...t, x: new Uint8Array(Buffer.from('coffer quote-helper workload AK\0', 'latin1')), y: new Uint8Array(0) } as TpmtPublic;
}
