import { createHash } from 'node:crypto';
import { VerificationError } from './common/errors.js';
import { bytesEqual, fromHex, toHex } from './common/hex.js';

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** `hex` (either case) encodes bytes that start with `prefix` (non-empty). */
function hexStartsWith(hex: string, prefix: Uint8Array): boolean {
  if (prefix.length === 0 || prefix.length * 2 > hex.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0 || ((hi << 4) | lo) !== prefix[i]) return false;
  }
  return true;
}

/**
 * The nonce binding rule of `coffer verify --nonce`: the report data must start with the nonce itself or with its
 * SHA-256, SHA-384 or SHA-512 digest (the conventions attesters use to fit a nonce into 64 bytes).
 */
export function checkNonce(reportDataHex: string, nonce: Uint8Array): void {
  // The raw nonce is compared on the hex text directly: no decoding or encoding on the hot path.
  if (hexStartsWith(reportDataHex, nonce)) return;
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
