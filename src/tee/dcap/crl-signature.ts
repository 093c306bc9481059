import { verify as ecVerify } from 'node:crypto';
import type { ParsedCert, ParsedCrl } from './pki.js';

/** CRL signatures: checked with node:crypto over the DER tbsCertList (ECDSA, DER-encoded signature). */
export function verifyCrlSignature(c: ParsedCrl, issuer: ParsedCert): boolean {
  try {
    const tbs = tbsOf(c.der);
    // ecdsa-with-SHA256 only: the CRL profile check has already refused any other algorithm.
    return ecVerify('sha256', tbs, issuer.key, Buffer.from(c.asn.signature));
  } catch {
    return false;
  }
}

/** The first element (tbsCertList) of the outer SEQUENCE, as raw DER bytes. */
function tbsOf(der: Uint8Array): Uint8Array {
  const hdr = (off: number): [number, number] => {
    let len = der[off + 1];
    let p = off + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[p + i];
      p += n;
    }
    return [p, len];
  };
  const [inner] = hdr(0);
  const [body, len] = hdr(inner);
  if (body + len > der.length) throw new RangeError('CRL DER truncated');
  return der.subarray(inner, body + len);
}
