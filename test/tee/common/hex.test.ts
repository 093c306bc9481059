import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bytesEqual, fromHex, toHex } from '../../../src/tee/common/hex.js';

test('toHex: lower-case hex of exactly the view, at any offset and length (pooled Buffers, subarrays, empty)', () => {
  const backing = new Uint8Array(randomBytes(300));
  for (const [off, len] of [[0, 0], [0, 1], [7, 4], [13, 16], [101, 20], [3, 32], [200, 64], [0, 300]]) {
    const view = backing.subarray(off, off + len);
    assert.equal(toHex(view), Buffer.from(backing.buffer, backing.byteOffset + off, len).toString('hex'));
  }
  assert.equal(toHex(new Uint8Array([0, 1, 0xab, 0xff])), '0001abff');
  // A small Buffer is a view into Node's shared pool: only its own bytes.
  assert.equal(toHex(Buffer.from([0xde, 0xad])), 'dead');
  const b = new Uint8Array(randomBytes(48));
  assert.ok(bytesEqual(fromHex(toHex(b)), b));
});
