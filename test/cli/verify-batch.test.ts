// `coffer verify` over many files: one result per file in input order whatever fails where, and bounded inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli as run } from '../support/cli.js';

const base = ['--collateral', 'samples/collateral', '--trust-anchor', 'samples/test-pki-root.pem'];

function batchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-batch-'));
  for (let i = 0; i < 40; i++) copyFileSync('samples/sgx-quote.dat', join(dir, `q${String(i).padStart(2, '0')}.dat`));
  writeFileSync(join(dir, 'garbage.dat'), 'not a quote at all');
  return dir;
}

test('a garbage file first, in the middle and last: every file gets its own line, in order', async () => {
  const dir = batchDir();
  const good = Array.from({ length: 40 }, (_, i) => join(dir, `q${String(i).padStart(2, '0')}.dat`));
  const g = join(dir, 'garbage.dat');
  const files = [g, ...good.slice(0, 20), g, ...good.slice(20), g];
  const r = await run(['verify', '--json', ...base, ...files]);
  assert.equal(r.code, 1, r.err);
  const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; verified: boolean; errors: { code: string }[] });
  assert.deepEqual(lines.map((l) => l.file), files);
  lines.forEach((l, i) => {
    assert.equal(l.verified, files[i] !== g, l.file);
    if (files[i] === g) assert.equal(l.errors[0]!.code, 'UNKNOWN_EVIDENCE');
  });
  // Human output: one OK/REJECTED header line per file, in the same order.
  const h = await run(['verify', ...base, ...files]);
  const heads = h.out.split('\n').filter((l) => /^(OK|REJECTED) /.test(l));
  assert.deepEqual(heads.map((l) => l.split(/\s+/)[1]!.replace(/:$/, '')), files);
});

test('an unreadable file in a batch is its own line and the exit status is 2; the rest still verify', async () => {
  const dir = batchDir();
  const files = [join(dir, 'q00.dat'), join(dir, 'missing.dat'), join(dir, 'q01.dat'), dir];
  const r = await run(['verify', '--json', ...base, ...files]);
  assert.equal(r.code, 2);
  const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; verified: boolean; errors: { code: string; message: string }[] });
  assert.deepEqual(lines.map((l) => [l.file, l.verified]), [[files[0], true], [files[1], false], [files[2], true], [files[3], false]]);
  assert.equal(lines[1]!.errors[0]!.code, 'IO_ERROR');
  assert.match(lines[1]!.errors[0]!.message, /ENOENT/);
  assert.equal(lines[3]!.errors[0]!.code, 'IO_ERROR');
});

test('oversized evidence is refused per file; oversized collateral, policy and event logs in one line, exit 2', async () => {
  const dir = batchDir();
  const big = join(dir, 'big.dat');
  writeFileSync(big, '');
  truncateSync(big, 200 * 1024 * 1024); // sparse: nothing is written, and nothing may be read
  const ev = await run(['verify', '--json', ...base, big, join(dir, 'q00.dat')]);
  assert.equal(ev.code, 2);
  const [l0, l1] = ev.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { verified: boolean; errors: { code: string; message: string }[] });
  assert.equal(l0!.errors[0]!.code, 'INPUT_TOO_LARGE');
  assert.match(l0!.errors[0]!.message, /big\.dat' is larger than the 16 MiB cap/);
  assert.equal(l1!.verified, true);

  const coll = join(dir, 'coll');
  cpSync('samples/collateral', coll, { recursive: true });
  copyFileSync(big, join(coll, 'zz-huge.json'));
  const c = await run(['verify', '--collateral', coll, '--trust-anchor', 'samples/test-pki-root.pem', join(dir, 'q00.dat')]);
  assert.equal(c.code, 2);
  assert.equal(c.out, '');
  assert.match(c.err, /^coffer: collateral file '.*zz-huge\.json' is larger than the 8 MiB cap\n$/);

  const p = await run(['verify', ...base, '--policy', big, join(dir, 'q00.dat')]);
  assert.equal(p.code, 2);
  assert.match(p.err, /^coffer: policy '.*big\.dat' is larger than the 1 MiB cap\n$/);

  const e = await run(['eventlog', big]);
  assert.equal(e.code, 2);
  assert.match(e.err, /^coffer: event log '.*big\.dat' is larger than the 16 MiB cap\n$/);
});

test('evidence of every size around the read buffer (64 KiB) is read whole: the trailing bytes are counted exactly', async () => {
  const dir = batchDir();
  const quote = readFileSync('samples/sgx-quote.dat');
  const sizes = [quote.length, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200 * 1024];
  const files = sizes.map((size, i) => {
    const f = join(dir, `padded${i}.dat`);
    // Non-zero bytes after the signature data: the verifier ignores them (as QVL does) and says how many there are.
    writeFileSync(f, Buffer.concat([quote, Buffer.alloc(size - quote.length, 0x01)]));
    return f;
  });
  const empty = join(dir, 'empty.dat');
  writeFileSync(empty, '');
  const r = await run(['verify', '--json', ...base, ...files, empty]);
  assert.equal(r.code, 1, r.err);
  const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; verified: boolean; claims: { warnings?: string[] } | null; errors: { code: string }[] });
  assert.equal(lines.length, sizes.length + 1);
  sizes.forEach((size, i) => {
    assert.equal(lines[i]!.verified, true, lines[i]!.file);
    const extra = size - quote.length;
    const warned = (lines[i]!.claims?.warnings ?? []).some((w) => w.includes(`has ${extra} bytes after its signature data`));
    assert.equal(warned, extra > 0, `${size}: ${JSON.stringify(lines[i]!.claims?.warnings)}`);
  });
  assert.equal(lines[sizes.length]!.verified, false);
  assert.notEqual(lines[sizes.length]!.errors[0]!.code, 'IO_ERROR');
});
