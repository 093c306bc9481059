import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './support/vectors.js';

test("README's quick-start verify command exits 0 on the bundled sample (through bin/coffer.js)", () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const m = /npx coffer (verify [^\n&]+)/.exec(readme);
  assert.ok(m, 'README quick start has a coffer verify command');
  const args = m[1].trim().split(/\s+/);
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/coffer.js'), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^OK +samples\/sgx-quote\.dat: verified sgx, TCB UpToDate/);
});
