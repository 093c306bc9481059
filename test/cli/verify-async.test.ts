// `coffer verify`'s asynchronous path: several quotes in flight per thread, their signatures verified on libuv's
// thread pool. It must print exactly what the synchronous path prints (good, bad and tampered files, in input
// order), still reject a wrong signature, fail closed on a verifier that errs or answers anything but true, and
// never have more quotes in flight than asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { asyncVerify, BatchVerifier, type VerifySetup } from '../../src/cli/commands/verify-batch.js';
import { CliUsageError } from '../../src/cli/context.js';
import { ASYNC_MIN_FILES, inFlightFor } from '../../src/cli/commands/verify-run.js';
import { parseQuote } from '../../src/tee/dcap/quote.js';
import { createVerifierRegistry } from '../../src/tee/index.js';
import { verifyEvidenceWith } from '../../src/tee/verify-evidence.js';
import type { AsyncSignatureVerifier } from '../../src/tee/common/verifier.js';
import { SnpTestPki, reportFields, signReport, p384 } from '../support/snp-pki.js';

const work = mkdtempSync(join(tmpdir(), 'coffer-async-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

const quote = new Uint8Array(readFileSync('samples/sgx-quote.dat'));
const anchor = new Uint8Array(readFileSync('samples/test-pki-root.pem'));

/** The sample quote with one byte of its quote signature (which) or of its QE report signature flipped. */
function tampered(which: 'quote' | 'qe'): Uint8Array {
  const q = parseQuote(quote);
  const sig = which === 'quote' ? q.signature : q.qeReportSignature;
  const at = Buffer.from(quote).indexOf(Buffer.from(sig));
  assert.ok(at > 0);
  const copy = Uint8Array.from(quote);
  copy[at + 5]! ^= 0x01;
  return copy;
}

function setupOf(inFlight: number, json: boolean): VerifySetup {
  return { tee: 'auto', json, atMs: Date.now(), policy: {}, collateral: 'samples/collateral', attachments: {}, trustAnchors: [anchor], inFlight };
}

/** Good quotes with garbage, a missing file and both kinds of bad signature mixed in. */
function batch(n: number): string[] {
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(work, `q${i}.dat`);
    if (i % 7 === 3) writeFileSync(f, tampered('quote'));
    else if (i % 11 === 5) writeFileSync(f, tampered('qe'));
    else if (i % 13 === 6) writeFileSync(f, 'garbage');
    else copyFileSync('samples/sgx-quote.dat', f);
    files.push(f);
  }
  files.splice(9, 0, join(work, 'missing.dat'));
  return files;
}

test('the async path prints exactly what the synchronous path prints, good and bad files, in order', async () => {
  const files = batch(60);
  for (const json of [false, true]) {
    const sync = await new BatchVerifier(setupOf(1, json)).run(files);
    for (const inFlight of [2, 8, 100]) {
      const r = await new BatchVerifier(setupOf(inFlight, json)).run(files);
      assert.deepEqual(r, sync, `inFlight ${inFlight}, json ${json}`);
    }
    assert.deepEqual({ rejected: sync.rejected, ioFailed: sync.ioFailed }, { rejected: true, ioFailed: true });
    const text = sync.text;
    assert.match(text, /QUOTE_SIGNATURE_INVALID/);
    assert.match(text, /QE_REPORT_SIGNATURE_INVALID/);
    assert.match(text, /UNKNOWN_EVIDENCE/);
    assert.match(text, /IO_ERROR/);
    if (json) {
      const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; verified: boolean });
      assert.deepEqual(lines.map((l) => l.file), files, 'one line per file, in input order');
      const good = files.filter((f) => /q\d+\.dat$/.test(f) && readFileSync(f).equals(Buffer.from(quote))).length;
      assert.equal(lines.filter((l) => l.verified).length, good);
    }
  }
});

test('a wrong signature fails through an injected async verifier; one that errs or answers non-true fails closed', async () => {
  const registry = createVerifierRegistry();
  const sgx = registry.get('sgx');
  const opts = Object.assign({ at: new Date(), tee: 'sgx' as const, trustAnchors: [anchor] }, await sgx.openCollateral!('samples/collateral'));
  const ok = await verifyEvidenceWith(registry, { evidence: quote }, { ...opts, verifySignature: asyncVerify });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  for (const [which, code] of [['quote', 'QUOTE_SIGNATURE_INVALID'], ['qe', 'QE_REPORT_SIGNATURE_INVALID']] as const) {
    const r = await verifyEvidenceWith(registry, { evidence: tampered(which) }, { ...opts, verifySignature: asyncVerify });
    assert.equal(r.verified, false);
    assert.equal(r.errors[0]?.code, code);
  }
  // Only `true` is a valid signature: a truthy non-boolean is not.
  const truthy: AsyncSignatureVerifier = async () => 1 as unknown as boolean;
  const r1 = await verifyEvidenceWith(registry, { evidence: quote }, { ...opts, verifySignature: truthy });
  assert.equal(r1.verified, false);
  assert.equal(r1.errors[0]?.code, 'QUOTE_SIGNATURE_INVALID');
  const erring: AsyncSignatureVerifier = async () => {
    throw new Error('thread pool gone');
  };
  const r2 = await verifyEvidenceWith(registry, { evidence: quote }, { ...opts, verifySignature: erring });
  assert.equal(r2.verified, false);
  // Not a function: refused as bad options, never silently verified synchronously or skipped.
  const r3 = await verifyEvidenceWith(registry, { evidence: quote }, { ...opts, verifySignature: 'yes' as unknown as AsyncSignatureVerifier });
  assert.equal(r3.verified, false);
  assert.equal(r3.errors[0]?.code, 'BAD_OPTIONS');
});

test('no more quotes in flight than setup.inFlight (two signatures each), and the window is used', async () => {
  const files = batch(40).filter((f) => !f.endsWith('missing.dat'));
  for (const inFlight of [1, 3, 6]) {
    let now = 0;
    let max = 0;
    let calls = 0;
    const counting: AsyncSignatureVerifier = async (...args) => {
      calls++;
      max = Math.max(max, ++now);
      try {
        // Resolve on a later turn so the batch has a chance to start more quotes meanwhile.
        await new Promise((r) => setTimeout(r, 1));
        return await asyncVerify(...args);
      } finally {
        now--;
      }
    };
    const r = await new BatchVerifier(setupOf(inFlight, false), counting).run(files);
    const sync = await new BatchVerifier(setupOf(1, false)).run(files);
    assert.deepEqual(r, sync);
    if (inFlight === 1) {
      assert.equal(calls, 0, 'inFlight 1 is the synchronous path');
      continue;
    }
    assert.ok(calls > 0);
    assert.ok(max <= 2 * inFlight, `max ${max} signatures in flight for inFlight ${inFlight}`);
    assert.ok(max > 2, `the window is used: ${max} signatures in flight at most`);
  }
});

test('SEV-SNP reports: the async path prints what the synchronous one does, a wrong signature still fails', async () => {
  const dir = mkdtempSync(join(work, 'snp-'));
  const pki = new SnpTestPki('Genoa');
  const fields = reportFields({ product: 'Genoa', vmpl: 2 });
  const key = p384();
  const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const col = join(dir, 'col');
  mkdirSync(col);
  writeFileSync(join(col, 'vcek.der'), leaf.der);
  writeFileSync(join(col, 'chain.pem'), pki.chainPem());
  const good = signReport(fields, key.privateKey);
  const bad = Uint8Array.from(good);
  bad[0x2a0 + 3]! ^= 0x01; // a byte of the signature's R
  const other = signReport(fields, p384().privateKey); // signed by a key that is not the VCEK's
  const files: string[] = [];
  for (let i = 0; i < 12; i++) {
    const f = join(dir, `r${i}.bin`);
    writeFileSync(f, i % 4 === 1 ? bad : i % 4 === 2 ? other : good);
    files.push(f);
  }
  const setup = (inFlight: number): VerifySetup => ({
    tee: 'snp', json: true, atMs: Date.parse('2025-06-01T00:00:00Z'), policy: {}, collateral: col, attachments: {},
    trustAnchors: [new Uint8Array(pki.ark.der)], inFlight,
  });
  let calls = 0;
  const counting: AsyncSignatureVerifier = (...args) => (calls++, asyncVerify(...args));
  const sync = await new BatchVerifier(setup(1)).run(files);
  const r = await new BatchVerifier(setup(4), counting).run(files);
  assert.deepEqual(r, sync);
  assert.equal(calls, files.length, 'one report signature per file went through the async verifier');
  const lines = r.text.trimEnd().split('\n').map((l) => JSON.parse(l) as { verified: boolean; errors: { code: string }[] });
  lines.forEach((l, i) => {
    if (i % 4 === 1 || i % 4 === 2) assert.equal(l.errors[0]?.code, 'REPORT_SIGNATURE_INVALID', `file ${i}`);
    else assert.equal(l.verified, true, JSON.stringify(l.errors));
  });
});

test('unusable collateral with quotes in flight: one usage error for the batch, nothing unhandled', async () => {
  const files = batch(20).filter((f) => !f.endsWith('missing.dat'));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const coll = join(work, 'coll-huge');
    mkdirSync(coll);
    writeFileSync(join(coll, 'zz-huge.json'), '');
    truncateSync(join(coll, 'zz-huge.json'), 9 * 1024 * 1024); // over the 8 MiB cap: a usage error
    const setup = { ...setupOf(8, false), collateral: coll };
    await assert.rejects(new BatchVerifier(setup).run(files), (e: Error) => e instanceof CliUsageError && /zz-huge\.json/.test(e.message));
    await new Promise((r) => setTimeout(r, 20)); // let any stray rejection surface
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('quotes go in flight for a batch on a machine with a second CPU', () => {
  assert.equal(inFlightFor(ASYNC_MIN_FILES, 2), 8);
  assert.equal(inFlightFor(3000, 8), 8);
  assert.equal(inFlightFor(ASYNC_MIN_FILES - 1, 2), 1, 'a few files: one at a time');
  assert.equal(inFlightFor(1, 2), 1);
  assert.equal(inFlightFor(3000, 1), 1, 'one CPU: nothing to hand off to');
});
