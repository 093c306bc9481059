// `coffer verify` on several threads (verify-pool.ts): the same lines in the same order as on one thread, with bad
// files mixed in, the caps applied in the workers, and a worker that fails or misbehaves ending the batch with one
// clear error instead of a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli as run } from '../support/cli.js';
import { BatchVerifier, type VerifySetup } from '../../src/cli/commands/verify-batch.js';
import { VerifyPool, type RunOptions, type WorkerScript } from '../../src/cli/commands/verify-pool.js';
import { MIN_FILES_PER_WORKER } from '../../src/cli/commands/verify-run.js';
import { CliUsageError } from '../../src/cli/context.js';

const base = ['--collateral', 'samples/collateral', '--trust-anchor', 'samples/test-pki-root.pem'];
const work = mkdtempSync(join(tmpdir(), 'coffer-pool-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

/** n good quotes with bad files at the start, in the middle, at chunk edges and at the end. */
function mixedBatch(n: number): { files: string[]; bad: Map<string, string> } {
  const dir = mkdtempSync(join(work, 'batch-'));
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(dir, `q${String(i).padStart(4, '0')}.dat`);
    copyFileSync('samples/sgx-quote.dat', f);
    files.push(f);
  }
  const garbage = join(dir, 'garbage.dat');
  writeFileSync(garbage, 'not a quote at all');
  const big = join(dir, 'big.dat');
  writeFileSync(big, '');
  truncateSync(big, 200 * 1024 * 1024); // sparse: over the 16 MiB cap, and nothing may be read
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  const missing = join(dir, 'missing.dat');
  const bad = new Map([[garbage, 'UNKNOWN_EVIDENCE'], [big, 'INPUT_TOO_LARGE'], [sub, 'IO_ERROR'], [missing, 'IO_ERROR']]);
  for (const [at, f] of [[0, garbage], [31, big], [32, missing], [Math.floor(n / 2), sub], [n - 1, garbage], [n + 3, big]] as const) files.splice(at, 0, f);
  return { files, bad };
}

function setupOf(files: string[], json: boolean, inFlight = 1): VerifySetup {
  return {
    tee: 'auto', json, atMs: Date.now(), policy: {}, collateral: 'samples/collateral', attachments: {}, inFlight,
    trustAnchors: [new Uint8Array(readFileSync('samples/test-pki-root.pem'))],
  };
}

/** A pool's whole life: started, one batch, closed whatever happens (as runVerify does). */
async function runPool(o: RunOptions & { workers: number; worker: WorkerScript }) {
  const pool = new VerifyPool(o.workers, o.worker);
  try {
    return await pool.run(o);
  } finally {
    await pool.close();
  }
}

const sourceWorker = (): WorkerScript => ({
  script: `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('../../src/cli/commands/verify-worker.ts', import.meta.url).href)}); })`,
  eval: true,
});

test('workers alone (the main thread verifies nothing) print what one thread prints, in order, caps applied', async () => {
  const { files, bad } = mixedBatch(150);
  for (const json of [true, false]) {
    const setup = setupOf(files, json);
    const one = await new BatchVerifier(setup).run(files);
    const pieces: string[] = [];
    // The workers verify 8 at once (signatures on the thread pool), the reference one at a time.
    const r = await runPool({ files, setup: { ...setup, inFlight: 8 }, workers: 2, chunk: 7, worker: sourceWorker(), local: null, write: (s: string) => pieces.push(s), flushBytes: 1024 });
    assert.equal(pieces.join(''), one.text);
    // Pieces of at least flushBytes, in order. How many depends on timing: when the thread with the first chunk
    // is the last to finish (its cold first quote; the other threads' quotes, their QE signatures remembered,
    // are fast), everything goes out in one piece.
    assert.ok(pieces.length >= 1 && pieces.slice(0, -1).every((p) => p.length >= 1024), `pieces of ${pieces.map((p) => p.length).join(', ')} characters`);
    assert.deepEqual(r, { rejected: true, ioFailed: true });
    if (json) {
      const lines = pieces.join('').trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; verified: boolean; errors: { code: string }[] });
      assert.deepEqual(lines.map((l) => l.file), files);
      for (const l of lines) assert.equal(l.verified ? undefined : l.errors[0]!.code, bad.get(l.file), l.file);
    }
  }
});

test('coffer verify --jobs 1 and --jobs 3 give the same output and exit status', async () => {
  const { files } = mixedBatch(2 * MIN_FILES_PER_WORKER + 20);
  for (const extra of [['--json'], []]) {
    const one = await run(['verify', ...base, ...extra, '--jobs', '1', ...files]);
    const three = await run(['verify', ...base, ...extra, '--jobs', '3', ...files]);
    assert.equal(one.code, 2, one.err);
    assert.equal(three.code, one.code, three.err);
    assert.equal(three.err, '');
    assert.equal(three.out, one.out);
  }
  // Only rejections (no I/O error): exit 1 on both; all good: exit 0.
  const goodAndGarbage = files.filter((f) => !/big|missing|directory/.test(f));
  for (const jobs of ['1', '2']) assert.equal((await run(['verify', ...base, '--jobs', jobs, ...goodAndGarbage])).code, 1);
  const good = files.filter((f) => /q\d+\.dat$/.test(f));
  const ok = await run(['verify', ...base, '--jobs', '2', ...good]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out.split('\n').filter((l) => l.startsWith('OK ')).length, good.length);
});

test('unusable collateral stops a multi-threaded batch with one line, exit 2', async () => {
  const { files } = mixedBatch(MIN_FILES_PER_WORKER + 10);
  const coll = join(work, 'coll');
  mkdirSync(coll);
  const big = join(coll, 'zz-huge.json');
  writeFileSync(big, '');
  truncateSync(big, 200 * 1024 * 1024);
  const r = await run(['verify', '--collateral', coll, '--trust-anchor', 'samples/test-pki-root.pem', '--jobs', '2', ...files]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^coffer: collateral file '.*zz-huge\.json' is larger than the 8 MiB cap\n$/);
  // A bad flag found after the workers were started (they start first): the same one line, and they are ended.
  const p = await run(['verify', ...base, '--policy', join(work, 'no-such-policy.yaml'), '--jobs', '2', ...files]);
  assert.equal(p.code, 2);
  assert.equal(p.out, '');
  assert.match(p.err, /^coffer: .*no-such-policy\.yaml.*\n$/);
});

test('--jobs must be a whole number from 1 to 64', async () => {
  for (const bad of ['0', '-1', 'abc', '1.5', '65', '']) {
    const r = await run(['verify', ...base, '--jobs', bad, 'samples/sgx-quote.dat']);
    assert.equal(r.code, 2, bad);
    assert.match(r.err, /^coffer: --jobs '.*' is not a whole number from 1 to 64\n$/, bad);
  }
});

test('a worker that fails to load, dies, exits or sends garbage ends the batch with one clear error, never a hang', async () => {
  const { files } = mixedBatch(40);
  const setup = setupOf(files, false);
  // A fake worker: `body` runs on the start message, with take() taking a chunk from the shared cursor.
  const wt = (body: string) =>
    `const { parentPort: p } = require('node:worker_threads'); p.on('message', (d) => { const take = () => Atomics.add(new Int32Array(d.cursor), 0, 1); ${body} })`;
  const done = (id: string) => `{ t: 'done', id: ${id}, text: 'x\\n', rejected: false, ioFailed: false }`;
  const cases: [string, string, RegExp][] = [
    ['throws while loading', `throw new Error('boom at load')`, /^verify worker failed: boom at load$/],
    ['exits', `process.exit(3)`, /^verify worker failed: it exited \(code 3\) before the batch was done$/],
    ['takes a chunk and exits quietly', wt('take(); process.exit(0)'), /it exited \(code 0\) before the batch was done/],
    ['dies on a chunk', wt(`take(); setTimeout(() => { throw new Error('died on a chunk') }, 5)`), /^verify worker failed: died on a chunk$/],
    ['sends garbage', wt(`p.postMessage('garbage')`), /^verify worker failed: it sent a malformed message$/],
    ['answers a chunk that does not exist', wt(`p.postMessage(${done('99999')})`), /malformed message/],
    ['answers a chunk twice', wt(`const id = take(); p.postMessage(${done('id')}); p.postMessage(${done('id')})`), /malformed message/],
    ['reports a failure', wt(`p.postMessage({ t: 'fail', message: 'no\\nsecond line' })`), /^verify worker failed: no$/],
    ['reports a usage error', wt(`p.postMessage({ t: 'usage', message: 'stopped here' })`), /^stopped here$/],
  ];
  const one = await new BatchVerifier(setup).run(files);
  for (const [name, script, expected] of cases) {
    const out: string[] = [];
    await assert.rejects(
      runPool({ files, setup, workers: 2, chunk: 4, worker: { script, eval: true }, local: null, write: (s: string) => out.push(s), flushBytes: 1 }),
      (e: Error) => {
        assert.ok(e instanceof CliUsageError, `${name}: ${e}`);
        assert.match(e.message, expected, name);
        return true;
      },
      name,
    );
    // With the main thread verifying too, it may finish the batch before the worker fails: then the output is
    // complete and right; otherwise the same clear error (or, for a worker answering a chunk the main thread
    // verified, the protocol error). Either way it ends.
    out.length = 0;
    try {
      const r = await runPool({ files, setup, workers: 2, chunk: 4, worker: { script, eval: true }, local: new BatchVerifier(setup), write: (s: string) => out.push(s), flushBytes: 1 });
      assert.equal(out.join(''), one.text, name);
      assert.deepEqual(r, { rejected: true, ioFailed: true });
    } catch (e) {
      assert.ok(e instanceof CliUsageError, `${name}: ${e}`);
      assert.match(e.message, new RegExp(`${expected.source}|malformed message`), name);
    }
  }
});
