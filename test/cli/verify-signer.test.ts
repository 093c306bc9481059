// The signature worker of `coffer verify` (verify-signer.ts): its answers are node:crypto.verify's, on every kind of
// input (good, bad, wrong curve or hash, a key crypto.verify refuses); a batch through it prints what the
// synchronous path prints; a worker that dies mid-batch, or a close() with answers outstanding, loses nothing and
// answers nothing unverified; an idle signer does not keep the process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { generateKeyPairSync, sign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { SignatureWorker, SIGNER_BATCH, SIGNER_IN_FLIGHT } from '../../src/cli/commands/verify-signer.js';
import { BatchVerifier, type VerifySetup } from '../../src/cli/commands/verify-batch.js';
import { parseQuote } from '../../src/tee/dcap/quote.js';

const work = mkdtempSync(join(tmpdir(), 'coffer-signer-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

type Case = [alg: string, data: Uint8Array, key: KeyObject, sig: Uint8Array];

function cases(): Case[] {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const out: Case[] = [];
  for (let i = 0; i < 3 * SIGNER_BATCH + 5; i++) {
    const data = new Uint8Array(Buffer.from(`message ${i}`.repeat(i + 1)));
    const s256 = new Uint8Array(sign('sha256', data, { key: p256.privateKey, dsaEncoding: 'ieee-p1363' }));
    const s384 = new Uint8Array(sign('sha384', data, { key: p384.privateKey, dsaEncoding: 'ieee-p1363' }));
    const flipped = Uint8Array.from(s256);
    flipped[i % flipped.length]! ^= 1;
    out.push(
      ['sha256', data, p256.publicKey, s256], // good
      ['sha256', data, p256.publicKey, flipped], // tampered
      ['sha256', data, other.publicKey, s256], // another key
      ['sha384', data, p384.publicKey, s384], // SEV-SNP's curve and hash
      ['sha256', data, p384.publicKey, s384], // wrong hash
      ['sha256', data, p256.publicKey, s256.subarray(0, 63)], // short signature
      ['sha256', data, ed.publicKey, s256], // a key crypto.verify refuses with a digest: it throws
    );
  }
  return out;
}

/** crypto.verify's outcome: the boolean, or the error's message. */
function expected([alg, data, key, sig]: Case): boolean | string {
  try {
    return cryptoVerify(alg, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch (e) {
    return (e as Error).message;
  }
}

const outcome = (p: Promise<boolean>): Promise<boolean | string> => p.then((ok) => ok, (e: Error) => e.message);

test('answers are crypto.verify\'s, item by item, whatever the item (and in any number of batches)', async () => {
  const all = cases();
  const signer = new SignatureWorker();
  try {
    const got = await Promise.all(all.map(([alg, data, key, sig]) => outcome(signer.verify(alg, data, { key, dsaEncoding: 'ieee-p1363' }, sig))));
    assert.deepEqual(got, all.map(expected));
    assert.ok(got.includes(true) && got.includes(false) && got.some((g) => typeof g === 'string'), 'every kind of outcome is covered');
    // The worker answered everything but the items crypto.verify throws on (verified here for their own error).
    const throwing = got.filter((g) => typeof g === 'string').length;
    assert.deepEqual(signer.counts, { byWorker: all.length - throwing, here: throwing });
  } finally {
    await signer.close();
  }
});

test('a worker that dies mid-batch, and a close() with answers outstanding, lose nothing: the rest is verified here', async () => {
  const all = cases();
  for (const stop of ['kill', 'close'] as const) {
    const signer = new SignatureWorker();
    const ps = all.map(([alg, data, key, sig]) => outcome(signer.verify(alg, data, { key, dsaEncoding: 'ieee-p1363' }, sig)));
    // Queued and sent batches are outstanding now: the worker has not answered yet (its answers come in a later turn).
    if (stop === 'kill') await (signer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    else await signer.close();
    assert.deepEqual(await Promise.all(ps), all.map(expected), stop);
    // And afterwards every verify runs on this thread.
    const [alg, data, key, sig] = all[0]!;
    assert.equal(await signer.verify(alg, data, { key, dsaEncoding: 'ieee-p1363' }, sig), true);
    await signer.close();
  }
});

test('a batch through the signer prints exactly what the synchronous path prints (good, tampered, garbage, missing)', async () => {
  const quote = new Uint8Array(readFileSync('samples/sgx-quote.dat'));
  const tampered = (which: 'quote' | 'qe') => {
    const q = parseQuote(quote);
    const sig = which === 'quote' ? q.signature : q.qeReportSignature;
    const at = Buffer.from(quote).indexOf(Buffer.from(sig));
    const copy = Uint8Array.from(quote);
    copy[at + 9]! ^= 0x01;
    return copy;
  };
  const files: string[] = [];
  for (let i = 0; i < 150; i++) {
    const f = join(work, `q${i}.dat`);
    if (i % 7 === 3) writeFileSync(f, tampered('quote'));
    else if (i % 11 === 5) writeFileSync(f, tampered('qe'));
    else if (i % 13 === 6) writeFileSync(f, 'garbage');
    else if (i % 17 === 8) {
      files.push(join(work, 'missing.dat'));
      continue;
    } else copyFileSync('samples/sgx-quote.dat', f);
    files.push(f);
  }
  for (const json of [false, true]) {
    const setup = (inFlight: number): VerifySetup => ({
      tee: 'auto', json, atMs: Date.now(), policy: {}, collateral: 'samples/collateral', attachments: {},
      trustAnchors: [new Uint8Array(readFileSync('samples/test-pki-root.pem'))], inFlight,
    });
    const sync = await new BatchVerifier(setup(1)).run(files);
    const signer = new SignatureWorker();
    try {
      const pieces: string[] = [];
      const r = await new BatchVerifier(setup(SIGNER_IN_FLIGHT), signer.verify).run(files, 0, files.length, { bytes: 2048, write: (s) => pieces.push(s) });
      assert.equal(pieces.join('') + r.text, sync.text);
      assert.ok(signer.counts.byWorker > 0 && signer.counts.here === 0, JSON.stringify(signer.counts));
      assert.ok(pieces.length > 1, 'the output streams out');
      assert.deepEqual({ rejected: r.rejected, ioFailed: r.ioFailed }, { rejected: sync.rejected, ioFailed: sync.ioFailed });
      assert.equal(sync.rejected && sync.ioFailed, true);
    } finally {
      await signer.close();
    }
  }
});

test('an idle signer never keeps the process alive (no close())', () => {
  const mod = new URL('../../src/cli/commands/verify-signer.ts', import.meta.url).href;
  const script = `
    import { generateKeyPairSync, sign } from 'node:crypto';
    const { SignatureWorker } = await import(${JSON.stringify(mod)});
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = new Uint8Array(8);
    const s = new SignatureWorker();
    const ok = await s.verify('sha256', data, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, sign('sha256', data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' }));
    console.log(ok);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.error, undefined, 'the process ended on its own');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'true');
});
