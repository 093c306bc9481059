import { VerificationError } from '../../common/errors.js';
import { TPMA_OBJECT, attributeNames } from '../abi/constants.js';
import type { TpmtPublic } from '../abi/public.js';

/**
 * What an attestation key must be before it is enrolled (the Keylime registrar's check): a restricted signing
 * key (the TPM signs only digests it computed itself, so no forged TPMS_ATTEST), fixedTPM and fixedParent (it
 * never leaves this TPM), sensitiveDataOrigin (the TPM generated the private part: nobody outside ever held it),
 * and no decrypt (a signing-only key).
 */
export const AK_REQUIRED_ATTRIBUTES = TPMA_OBJECT.restricted | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;

export function checkAkAttributes(p: TpmtPublic): void {
  const a = p.objectAttributes;
  const missing = AK_REQUIRED_ATTRIBUTES & ~a;
  if (missing) {
    throw new VerificationError('TPM_AK_BAD_ATTRIBUTES', `the AK lacks ${attributeNames(missing).join('|')} (has ${attributeNames(a).join('|') || 'none'}): an AK must be a fixedTPM, fixedParent, sensitiveDataOrigin restricted signing key`);
  }
  if (a & TPMA_OBJECT.decrypt) throw new VerificationError('TPM_AK_BAD_ATTRIBUTES', 'the AK is also a decryption key: an AK must be signing-only');
}
