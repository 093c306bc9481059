import { createHash } from 'node:crypto';
import { ImageError } from './errors.js';

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Content addressing is the whole security of a pinned image: every fetched byte is checked against its name. */
export function checkDigest(bytes: Uint8Array, expected: string, what: string): void {
  if (!DIGEST_RE.test(expected)) throw new ImageError('DIGEST_MISMATCH', `${what}: digest ${JSON.stringify(expected)} is not sha256:<64 hex>`);
  const got = sha256Digest(bytes);
  if (got !== expected) throw new ImageError('DIGEST_MISMATCH', `${what}: content has digest ${got}, expected ${expected}`);
}
