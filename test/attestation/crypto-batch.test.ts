import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { CryptoBatch } from '../../src/attestation/crypto-batch.js';

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const enc = 'ieee-p1363' as const;
const msg = (i: number) => Buffer.from(`message ${i}`);
const sig = (i: number, k = p256.privateKey) => sign('sha256', msg(i), { key: k, dsaEncoding: enc });
const flip = (b: Buffer, at = 5) => (b[at] ^= 1, b);

test('CryptoBatch: each verification gets its own answer, as node:crypto gives it, in one batch per turn', async () => {
  const b = new CryptoBatch();
  const cases = [
    { data: msg(1), s: sig(1), want: true },
    { data: msg(2), s: flip(sig(2)), want: false }, // tampered signature
    { data: msg(3), s: sig(4), want: false }, // another message's signature
    { data: msg(5), s: sig(5), want: true },
    { data: flip(msg(6), 0), s: sig(6), want: false }, // tampered data
  ];
  const got = await Promise.all(cases.map((c) => b.verify('sha256', c.data, { key: p256.publicKey, dsaEncoding: enc }, c.s)));
  assert.deepEqual(got, cases.map((c) => c.want));
  assert.deepEqual(b.stats, { flushes: 1, ops: cases.length }, 'asked in one turn, run in one batch');
  // A P-384 key (SEV-SNP reports) and a key of another platform in the same batch.
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const s384 = sign('sha384', msg(7), { key: p384.privateKey, dsaEncoding: enc });
  assert.deepEqual(await Promise.all([
    b.verify('sha384', msg(7), { key: p384.publicKey, dsaEncoding: enc }, s384),
    b.verify('sha256', msg(1), { key: other.publicKey, dsaEncoding: enc }, sig(1)),
  ]), [true, false]);
});

test('CryptoBatch: an operation that throws rejects alone with node:crypto error; the rest of its batch is answered', async () => {
  const b = new CryptoBatch();
  const r = await Promise.allSettled([
    b.verify('sha256', msg(1), { key: p256.publicKey, dsaEncoding: enc }, sig(1)),
    b.verify('no-such-digest', msg(1), { key: p256.publicKey, dsaEncoding: enc }, sig(1)),
    b.sign('no-such-digest', msg(1), { key: p256.privateKey, dsaEncoding: enc }),
    b.verify('sha256', msg(2), { key: p256.publicKey, dsaEncoding: enc }, flip(sig(2))),
  ]);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
  assert.equal((r[0] as PromiseFulfilledResult<boolean>).value, true);
  assert.equal((r[3] as PromiseFulfilledResult<boolean>).value, false);
  // The same error the synchronous call throws.
  assert.throws(() => verify('no-such-digest', msg(1), { key: p256.publicKey, dsaEncoding: enc }, sig(1)), { message: ((r[1] as PromiseRejectedResult).reason as Error).message });
});

test('CryptoBatch: signatures verify under the public key (P-1363, 64 bytes), each over its own data', async () => {
  const b = new CryptoBatch();
  const sigs = await Promise.all([0, 1, 2].map((i) => b.sign('sha256', msg(i), { key: p256.privateKey, dsaEncoding: enc })));
  for (const [i, s] of sigs.entries()) {
    assert.equal(s.length, 64);
    assert.ok(verify('sha256', msg(i), { key: p256.publicKey, dsaEncoding: enc }, s));
    assert.ok(!verify('sha256', msg(i + 1), { key: p256.publicKey, dsaEncoding: enc }, s));
  }
  assert.deepEqual(b.stats, { flushes: 1, ops: 3 });
});

test('CryptoBatch: a long queue runs 64 at a time (one stall stays bounded), and every operation is answered', async () => {
  const b = new CryptoBatch();
  const n = 150;
  const s = sig(9);
  const got = await Promise.all(Array.from({ length: n }, (_, i) => b.verify('sha256', msg(9), { key: p256.publicKey, dsaEncoding: enc }, i % 3 ? s : flip(Buffer.from(s)))));
  assert.deepEqual(got, Array.from({ length: n }, (_, i) => i % 3 !== 0));
  assert.deepEqual(b.stats, { flushes: 3, ops: n });
  const sigs = await Promise.all(Array.from({ length: n }, (_, i) => b.sign('sha256', msg(i), { key: p256.privateKey, dsaEncoding: enc })));
  assert.ok(sigs.every((s, i) => verify('sha256', msg(i), { key: p256.publicKey, dsaEncoding: enc }, s)));
  assert.deepEqual(b.stats, { flushes: 6, ops: 2 * n });
  // Later turns start new batches.
  assert.equal(await b.verify('sha256', msg(9), { key: p256.publicKey, dsaEncoding: enc }, s), true);
  assert.equal(b.stats.flushes, 7);
});
