// The service's resolved-policy cache: a document written by another connection (another process on the same
// SQLite file, an admin CLI) applies to the very next resolve; errors are never cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kek, SqliteStore } from '../../src/store/index.js';
import { PolicyCache } from '../../src/attestation/policies.js';

test('PolicyCache: writes on another connection are seen by the next resolve; unchanged documents are not re-read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-policy-cache-'));
  const kek = Kek.fromBytes(Buffer.alloc(32, 7));
  const a = SqliteStore.open({ path: join(dir, 's.db'), kek });
  const b = SqliteStore.open({ path: join(dir, 's.db'), kek });
  try {
    let reads = 0;
    const getDocument = a.getDocument.bind(a);
    a.getDocument = (...args: Parameters<typeof a.getDocument>) => (reads++, getDocument(...args));
    const cache = new PolicyCache(a);
    const p0 = await cache.resolve();
    assert.equal(p0.version, null);
    assert.equal(p0.referenceValuesRef, null);
    assert.equal(reads, 2);
    assert.equal(await cache.resolve(), p0, 'cached while no document changed');
    assert.equal(reads, 2);

    await b.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sgx'] }), 'other', 1);
    const p1 = await cache.resolve();
    assert.deepEqual(p1.referenceValuesRef, { id: 'default', version: 1 });
    assert.deepEqual(p1.referenceValues.tees, ['sgx']);

    await b.putDocument('reference-values', 'default', JSON.stringify({ tees: ['tdx'] }), 'other', 2);
    assert.deepEqual((await cache.resolve()).referenceValues.tees, ['tdx']);
    await b.deleteDocument('reference-values', 'default', 'other', 3);
    assert.equal((await cache.resolve()).referenceValuesRef, null);

    // Unknown policy: an error every time (not cached), until the policy exists.
    await assert.rejects(cache.resolve('strict'), /no attestation policy named 'strict'/);
    await assert.rejects(cache.resolve('strict'), /no attestation policy named 'strict'/);
    await b.putDocument('policy', 'strict', 'rules: []\n', 'other', 4);
    assert.equal((await cache.resolve('strict')).version, 1);
    // The cached object is frozen: appraisal cannot change what the next request sees.
    assert.ok(Object.isFrozen(await cache.resolve('strict')));
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
