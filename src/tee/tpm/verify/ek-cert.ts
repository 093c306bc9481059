import { VerificationError } from '../../common/errors.js';
import { bytesEqual } from '../../common/hex.js';
import { publicToKeyObject, type TpmtPublic } from '../abi/public.js';
import { verifyChain } from './ak-trust.js';

export interface EkCertificateCheck {
  subject: string;
  issuer: string;
  notAfter: string;
}

/**
 * Verifies an EK certificate (as read from NV 0x01C00002/0x01C0000A) up to the manufacturer roots the caller
 * trusts, at time `at`, and — when the TPM's EK public area is given — that the certificate is for that very
 * key. This proves which TPM holds the EK; binding an AK to it additionally needs credential activation or a
 * TPM2_Certify by a certified key (see AkTrust).
 */
export function verifyEkCertificate(ekCert: Uint8Array, intermediates: Uint8Array[], roots: Uint8Array[], at: Date, ekPublic?: TpmtPublic): EkCertificateCheck {
  const leaf = verifyChain([ekCert, ...intermediates], roots, at, 'EK');
  if (ekPublic) {
    const want = new Uint8Array(publicToKeyObject(ekPublic).export({ format: 'der', type: 'spki' }));
    const got = new Uint8Array(leaf.publicKey.export({ format: 'der', type: 'spki' }));
    if (!bytesEqual(want, got)) throw new VerificationError('TPM_EK_MISMATCH', 'the EK certificate is for a different key than the TPM\'s EK');
  }
  return { subject: leaf.subject.replace(/\n/g, ', '), issuer: leaf.issuer.replace(/\n/g, ', '), notAfter: leaf.validTo };
}
