import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cli } from '../support/cli.js';
import { appraise } from '../../src/policy/appraise.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Claims } from '../../src/tee/common/claims.js';

test('coffer up --dev with a PostgreSQL store is refused: exit 2, one line, nothing opened or created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-devpg-'));
  try {
    for (const args of [['--store', 'postgres://coffer@127.0.0.1:1/coffer'], ['--store', 'postgresql://x@127.0.0.1:1/y']]) {
      const r = await cli(['up', '--dev', '--port', '0', '--data', join(dir, 'd'), ...args]);
      assert.equal(r.code, 2, r.out + r.err);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.match(r.err, /--dev never writes into a PostgreSQL store/);
      assert.equal(existsSync(join(dir, 'd')), false, 'the data dir was not even created');
    }
    const prev = process.env.COFFER_STORE_URL;
    process.env.COFFER_STORE_URL = 'postgres://coffer@127.0.0.1:1/coffer';
    try {
      const r = await cli(['kbs', '--dev', '--port', '0', '--data', join(dir, 'e')]);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /\$COFFER_STORE_URL/);
    } finally {
      if (prev === undefined) delete process.env.COFFER_STORE_URL;
      else process.env.COFFER_STORE_URL = prev;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reference values marked dev (what coffer up --dev writes) fail every appraisal outside dev mode', () => {
  const claims: Claims = { tee: 'sample', measurements: {}, svns: {}, debug: false, reportData: '', platform: {}, advisories: [], warnings: [], raw: {} };
  const rv = parsePolicy(JSON.stringify({ dev: true, tees: ['sample', 'tdx'] }));
  assert.equal(rv.dev, true);
  const a = appraise(claims, rv);
  assert.equal(a.status, 'contraindicated');
  assert.deepEqual(a.failures.map((f) => f.code), ['DEV_REFERENCE_VALUES']);
  assert.equal(appraise(claims, rv, { devMode: true }).status, 'affirming');
  assert.throws(() => parsePolicy('dev: yes please'), { code: 'POLICY_INVALID' });
});
