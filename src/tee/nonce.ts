import { createHash } from 'node:crypto';
import { VerificationError } from './common/errors.js';
import { bytesEqual, fromHex, toHex } from './common/hex.js';

/**
 * The nonce binding rule of `coffer verify --nonce`: the report data must start with the nonce itself or with its
 * SHA-256, SHA-384 or SHA-512 digest (the conventions attesters use to fit a nonce into 64 bytes).
 */
export function checkNonce(reportDataHex: string, nonce: Uint8Array): void {
  // Claims carry lower-case hex (toHex): the raw-nonce match is a string prefix test, no decoding.
  if (nonce.length > 0 && reportDataHex.startsWith(toHex(nonce))) return;
  const rd = fromHex(reportDataHex);
  // The raw nonce first; the digests are only computed when it does not match (hot path of every verification).
  const matches = (c: Uint8Array) => c.length > 0 && c.length <= rd.length && bytesEqual(rd.subarray(0, c.length), c);
  if (matches(nonce)) return;
  for (const h of ['sha256', 'sha384', 'sha512'] as const) {
    if (matches(new Uint8Array(createHash(h).update(nonce).digest()))) return;
  }
  throw new VerificationError(
    'NONCE_MISMATCH',
    `report data does not start with the nonce ${toHex(nonce)} nor its SHA-256/384/512 digest`,
  );
}
