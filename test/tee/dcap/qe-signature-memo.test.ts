// The QE report signature memo (DcapQuoteVerifier.qeSigs): a QE report signature that verified under one PCK leaf
// is not verified again for the same (leaf, report, signature). The attacker's paths: the same report with a
// tampered signature, the same report and signature under another PCK certificate, a flood of distinct reports
// (the memo stays bounded), a failure never remembered; SGX and TDX, synchronous and asynchronous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { world } from '../../support/dcap-helpers.js';
import { buildQuote } from '../../support/dcap-pki.js';
import { PCK_COMPS, PCK_PCESVN, SGX_FMSPC, type DcapWorld } from '../../support/dcap-world.js';
import { parseQuote, serializeQuote } from '../../../src/tee/dcap/quote.js';
import { DcapQuoteVerifier } from '../../../src/tee/dcap/verify-quote.js';
import { VerificationError } from '../../../src/tee/common/errors.js';
import type { AsyncSignatureVerifier } from '../../../src/tee/common/verifier.js';

type Tee = 'sgx' | 'tdx';

/** An async verifier that verifies for real and records which keys it was asked about. */
function counting(): { verify: AsyncSignatureVerifier; keys: KeyObject[] } {
  const keys: KeyObject[] = [];
  const verify: AsyncSignatureVerifier = (alg, data, key, sig) => {
    keys.push(key.key);
    return new Promise((resolve, reject) => cryptoVerify(alg, data, key, sig, (e, ok) => (e ? reject(e) : resolve(ok))));
  };
  return { verify, keys };
}

async function run(v: DcapQuoteVerifier, w: DcapWorld, q: Uint8Array, tee: Tee, verifySignature?: AsyncSignatureVerifier): Promise<string> {
  try {
    await v.verify(q, tee, { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral(tee) }, verifySignature });
    return 'OK';
  } catch (e) {
    if (e instanceof VerificationError) return e.code;
    throw e;
  }
}

/** The quote with one byte of its QE report signature flipped (report, quote signature and everything else kept). */
function tamperQeSig(quote: Uint8Array): Uint8Array {
  const q = parseQuote(quote);
  const sig = Uint8Array.from(q.qeReportSignature);
  sig[7]! ^= 0x01;
  return serializeQuote({ ...q, qeReportSignature: sig });
}

const modes = [
  ['synchronous', () => undefined],
  ['asynchronous', () => counting().verify],
] as const;

for (const [mode, sigVerifier] of modes) {
  for (const [tee, version] of [['sgx', 3], ['tdx', 4]] as const) {
    test(`${tee} ${mode}: after a good quote, the same QE report with a tampered signature is QE_REPORT_SIGNATURE_INVALID`, async () => {
      const w = await world();
      const v = new DcapQuoteVerifier();
      const good = await w.quote({ tee, version });
      assert.equal(await run(v, w, good, tee, sigVerifier()), 'OK');
      assert.equal(await run(v, w, good, tee, sigVerifier()), 'OK', 'a memo hit verifies');
      const bad = tamperQeSig(good);
      assert.deepEqual(parseQuote(bad).qeReport, parseQuote(good).qeReport);
      assert.equal(await run(v, w, bad, tee, sigVerifier()), 'QE_REPORT_SIGNATURE_INVALID');
      // And again: a failure is never remembered, and the good one still verifies.
      assert.equal(await run(v, w, bad, tee, sigVerifier()), 'QE_REPORT_SIGNATURE_INVALID');
      assert.equal(await run(v, w, good, tee, sigVerifier()), 'OK');
    });
  }

  test(`sgx ${mode}: the same QE report and signature under another PCK certificate (another key) is QE_REPORT_SIGNATURE_INVALID`, async () => {
    const w = await world();
    const v = new DcapQuoteVerifier();
    const other = await w.pki.issuePck('processor', { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: SGX_FMSPC });
    const chain = [w.pki.processorCa, w.pki.root];
    const good = await buildQuote({ tee: 'sgx', version: 3, pck: w.sgxPck, pckChain: chain, attKey: w.attKey });
    const otherGood = await buildQuote({ tee: 'sgx', version: 3, pck: other, pckChain: chain, attKey: w.attKey });
    // Both platforms verify on their own (the memo holds both) ...
    assert.equal(await run(v, w, good, 'sgx', sigVerifier()), 'OK');
    assert.equal(await run(v, w, otherGood, 'sgx', sigVerifier()), 'OK');
    // ... but the first one's QE report and signature carried by the other's certificate do not.
    const moved = serializeQuote({ ...parseQuote(good), certData: parseQuote(otherGood).certData });
    assert.equal(await run(v, w, moved, 'sgx', sigVerifier()), 'QE_REPORT_SIGNATURE_INVALID');
  });
}

test('a memo hit skips only the QE report signature: the quote signature is verified for every quote', async () => {
  const w = await world();
  const v = new DcapQuoteVerifier();
  const c = counting();
  const q1 = await w.quote({ tee: 'sgx', version: 3, reportData: new Uint8Array(64).fill(1) });
  assert.equal(await run(v, w, q1, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 2);
  // Same platform (same QE report and signature bytes), new report data: one verify, with the attestation key.
  const q2 = serializeQuote({ ...parseQuote(await w.quote({ tee: 'sgx', version: 3, reportData: new Uint8Array(64).fill(2) })), qeReportSignature: parseQuote(q1).qeReportSignature });
  assert.equal(await run(v, w, q2, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 3);
  assert.equal(c.keys[2], c.keys[0], 'the one verify on a hit is the quote signature (attestation key)');
  assert.notEqual(c.keys[2], c.keys[1]);
  // A tampered quote signature on a known QE report is still caught.
  const pq = parseQuote(q2);
  const sig = Uint8Array.from(pq.signature);
  sig[3]! ^= 0x80;
  assert.equal(await run(v, w, serializeQuote({ ...pq, signature: sig }), 'sgx', c.verify), 'QUOTE_SIGNATURE_INVALID');
});

test('the memo is bounded per PCK leaf: the oldest QE report is verified again once more distinct ones have been seen', async () => {
  const w = await world();
  const limit = 4;
  const v = new DcapQuoteVerifier({ qeSignatureMemo: { leaves: 8, perLeaf: limit } });
  const quotes: Uint8Array[] = [];
  // Distinct QE reports: the QE authentication data (bound into the QE report data) differs.
  for (let i = 0; i < limit + 2; i++) quotes.push(await w.quote({ tee: 'sgx', version: 3, qeAuthData: new Uint8Array(32).fill(i + 1) }));
  const c = counting();
  for (const q of quotes) assert.equal(await run(v, w, q, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 2 * quotes.length);
  // The newest is remembered: one verify (its quote signature).
  assert.equal(await run(v, w, quotes[quotes.length - 1]!, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 2 * quotes.length + 1);
  // The first was evicted: both signatures again.
  assert.equal(await run(v, w, quotes[0]!, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 2 * quotes.length + 3);
});

test('the memo is bounded in PCK leaves: the oldest platform is verified again once more platforms have been seen', async () => {
  const w = await world();
  const v = new DcapQuoteVerifier({ qeSignatureMemo: { leaves: 2, perLeaf: 4 } });
  const chain = [w.pki.processorCa, w.pki.root];
  const quotes: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const pck = await w.pki.issuePck('processor', { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: SGX_FMSPC });
    quotes.push(await buildQuote({ tee: 'sgx', version: 3, pck, pckChain: chain, attKey: w.attKey }));
  }
  const c = counting();
  for (const q of quotes) assert.equal(await run(v, w, q, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 6);
  assert.equal(await run(v, w, quotes[2]!, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 7, 'the newest platform is remembered');
  assert.equal(await run(v, w, quotes[0]!, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, 9, 'the oldest platform was evicted');
});

test('quotes verified at once (asynchronous, all missing the memo) remember their QE report once: older ones stay', async () => {
  const w = await world();
  const v = new DcapQuoteVerifier({ qeSignatureMemo: { leaves: 8, perLeaf: 2 } });
  const older = await w.quote({ tee: 'sgx', version: 3, qeAuthData: new Uint8Array(32).fill(0x51) });
  const c = counting();
  assert.equal(await run(v, w, older, 'sgx', c.verify), 'OK');
  // Six quotes of one newer QE report at once: each verifies it (none is remembered yet when they start).
  const newer = await w.quote({ tee: 'sgx', version: 3, qeAuthData: new Uint8Array(32).fill(0x52) });
  const results = await Promise.all(Array.from({ length: 6 }, () => run(v, w, newer, 'sgx', c.verify)));
  assert.deepEqual(results, Array(6).fill('OK'));
  // The newer one went in once, so the older one (2 per leaf) is still remembered: one verify each.
  const before = c.keys.length;
  assert.equal(await run(v, w, older, 'sgx', c.verify), 'OK');
  assert.equal(await run(v, w, newer, 'sgx', c.verify), 'OK');
  assert.equal(c.keys.length, before + 2);
});
