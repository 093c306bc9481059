// NonceService: nonces issued ahead under load (the pool) are stored before they are handed out, each exactly once,
// with their stored expiry; a quiet service issues on demand; a store failure is a failure, never an unstored nonce.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { NONCE_SCOPE, NonceService, POOL_MAX_AGE_MS } from '../../src/attestation/nonces.js';
import type { Store } from '../../src/store/types.js';
import { tempStore } from '../support/service.js';

const ts = tempStore();
after(() => ts.cleanup());
const TTL = 60_000;

/** The real store, counting createNonce calls and when each one's commit resolved. */
function counting(store: Store): { store: Store; created: Set<string> } {
  const created = new Set<string>();
  const wrapped = Object.create(store) as Store;
  wrapped.createNonce = async (nonce, scope, exp) => {
    await store.createNonce(nonce, scope, exp);
    created.add(nonce);
  };
  return { store: wrapped, created };
}

test('quiet: each nonce is issued on demand, stored before it is returned, with the full lifetime', async () => {
  const c = counting(ts.store);
  const ns = new NonceService(c.store, TTL);
  const t = 1_000_000;
  for (let i = 0; i < 3; i++) {
    const { nonce, expiresAt } = await ns.issue(t + i * 2 * POOL_MAX_AGE_MS);
    assert.ok(c.created.has(nonce), 'committed before it was handed out');
    assert.equal(Date.parse(expiresAt), t + i * 2 * POOL_MAX_AGE_MS + TTL);
  }
  assert.equal(c.created.size, 3, 'nothing issued ahead at this rate');
});

test('busy: later nonces come from the pool, every one stored first, distinct, single-use, expiring as stated', async () => {
  const c = counting(ts.store);
  const ns = new NonceService(c.store, TTL);
  const t = 2_000_000;
  const out: { nonce: string; expiresAt: string }[] = [];
  let ahead = 0;
  for (let i = 0; i < 200; i++) {
    const before = new Set(c.created);
    const r = await ns.issue(t + i); // 200 issues in 200 ms
    assert.ok(c.created.has(r.nonce), `nonce ${i} was handed out before its insert committed`);
    if (before.has(r.nonce)) ahead++;
    out.push(r);
  }
  assert.equal(new Set(out.map((o) => o.nonce)).size, 200, 'no nonce handed out twice');
  assert.ok(ahead > 150, `most were issued ahead (the pool was used): ${ahead}`);
  for (const { nonce, expiresAt } of out) {
    const exp = Date.parse(expiresAt);
    assert.ok(exp <= t + 200 + TTL && exp >= t + TTL - POOL_MAX_AGE_MS, 'lifetime within the pool age of the full one');
    assert.equal(await ts.store.consumeNonce(nonce, NONCE_SCOPE, exp - 1), 'ok');
    assert.equal(await ts.store.consumeNonce(nonce, NONCE_SCOPE, exp - 1), 'used');
  }
  // After a pause longer than the pool age, pooled nonces are never handed out: a full lifetime again.
  const later = t + 200 + POOL_MAX_AGE_MS + 1;
  const r = await ns.issue(later);
  assert.equal(Date.parse(r.expiresAt), later + TTL);
});

test('concurrent issues under load get distinct stored nonces', async () => {
  const c = counting(ts.store);
  const ns = new NonceService(c.store, TTL);
  const t = 3_000_000;
  for (let i = 0; i < 10; i++) await ns.issue(t);
  const burst = await Promise.all(Array.from({ length: 100 }, () => ns.issue(t + 1)));
  assert.equal(new Set(burst.map((b) => b.nonce)).size, 100);
  for (const b of burst) assert.ok(c.created.has(b.nonce));
});

test('a store that cannot write: issue fails, the pool never hands out an unstored nonce', async () => {
  const c = counting(ts.store);
  let broken = false;
  const flaky = Object.create(c.store) as Store;
  flaky.createNonce = async (n, s, e) => {
    if (broken) throw new Error('disk full');
    return c.store.createNonce(n, s, e);
  };
  const ns = new NonceService(flaky, TTL);
  const t = 4_000_000;
  for (let i = 0; i < 20; i++) await ns.issue(t + i);
  broken = true;
  // What was stored before the failure may still be handed out; then the failure surfaces.
  let failed = false;
  for (let i = 0; i < 200 && !failed; i++) {
    try {
      const r = await ns.issue(t + 20 + i);
      assert.ok(c.created.has(r.nonce), 'handed out only after its insert committed');
    } catch (e) {
      assert.match((e as Error).message, /disk full/);
      failed = true;
    }
  }
  assert.ok(failed, 'the store failure reached the caller');
});

test('exclusive SQLite store: two concurrent attestations with one nonce give one token and one 409, one audit record', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { Kek, SqliteStore } = await import('../../src/store/index.js');
  const { buildAttestationApp } = await import('../../src/attestation/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-nonce-race-'));
  const store = SqliteStore.open({ path: join(dir, 'coffer.db'), kek: Kek.fromBytes(Buffer.alloc(32, 5)), exclusive: true });
  const { app } = await buildAttestationApp({ store, adminKeys: [], dev: true });
  try {
    await store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'] }), 't', Date.now());
    for (let round = 0; round < 5; round++) {
      const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json() as { nonce: string };
      const evidence = Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64');
      // Both pass the in-memory pre-check; the commit decides.
      const rs = await Promise.all([0, 1].map(() => app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence, nonce } })));
      assert.deepEqual(rs.map((r) => r.statusCode).sort(), [200, 409], rs.map((r) => r.body).join('\n'));
      assert.ok(rs.find((r) => r.statusCode === 200)!.json().token);
    }
    assert.equal((await store.listAudit({ action: 'attest' })).length, 5, 'one record per nonce');
    // Unknown and expired nonces are refused before any verification, exclusive or not.
    const unknown = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: 'e30=', nonce: Buffer.alloc(32, 9).toString('base64') } });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json().type, /\/nonce-unknown$/);
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
