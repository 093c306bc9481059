import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checkNonce } from '../../src/tee/nonce.js';

test('checkNonce: raw prefix (either hex case), SHA-256/384/512 prefixes, and rejections', () => {
  const nonce = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x0a]);
  checkNonce('deadbeef0a' + '00'.repeat(59), nonce);
  checkNonce('DEADBEEF0A' + 'FF'.repeat(59), nonce);
  for (const h of ['sha256', 'sha384', 'sha512']) checkNonce(createHash(h).update(nonce).digest('hex').padEnd(128, '0'), nonce);
  const no = (rd: string, n: Uint8Array = nonce) => assert.throws(() => checkNonce(rd, n), (e: Error & { code?: string }) => e.code === 'NONCE_MISMATCH');
  no('deadbeef0b' + '00'.repeat(59));
  no('deadbeef'); // shorter than the nonce
  no('00'.repeat(64));
});
