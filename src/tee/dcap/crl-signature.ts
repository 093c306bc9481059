import { verify as ecVerify } from 'node:crypto';
import type { ParsedCert, ParsedCrl } from './pki.js';

/** CRL signatures: checked with node:crypto over the DER tbsCertList (ECDSA, DER-encoded signature). */
export function verifyCrlSignature(c: ParsedCrl, issuer: ParsedCert): boolean {
  try {
    // ecdsa-with-SHA256 only: the CRL profile check has already refused any other algorithm.
    return ecVerify('sha256', c.parts.tbs, issuer.key, c.parts.signature);
  } catch {
    return false;
  }
}
