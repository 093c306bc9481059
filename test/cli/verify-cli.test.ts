import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli as run } from '../support/cli.js';

test('missing file and bad flags exit 2', async () => {
  assert.equal((await run(['verify', '/definitely/not/here'])).code, 2);
  assert.equal((await run(['verify', '--nope', 'x'])).code, 2);
  assert.equal((await run(['verify', '--at', 'yesterday', 'x'])).code, 2);
  assert.equal((await run(['verify', '--nonce', 'xyz', 'x'])).code, 2);
});

test('unrecognised evidence is a rejection with a JSON line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-cli-'));
  const f = join(dir, 'junk.bin');
  writeFileSync(f, 'not a quote');
  const r = await run(['verify', f, '--json']);
  assert.equal(r.code, 1);
  const line = JSON.parse(r.out);
  assert.equal(line.file, f);
  assert.equal(line.verified, false);
  assert.ok(line.errors.length > 0 && typeof line.errors[0].code === 'string');
});
