import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/types.js';

/** The store contract: every implementation runs exactly these assertions. */
export interface RawAccess {
  /** Copies another resource's nonce+ciphertext into this path's row. */
  tamper(path: string): Promise<void>;
  /** The sessions table as stored: what someone with a copy of the database reads. */
  sessionRows(): Promise<{ id: string; data: string }[]>;
}

export function storeContract(name: string, open: () => Promise<Store>, reopenRaw?: () => Promise<RawAccess>): void {
  const withStore = (title: string, fn: (s: Store) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });

  withStore('migrations are applied and recorded', async (s) => {
    assert.deepEqual(await s.migrations(), [1, 2, 3, 4, 5]);
  });

  withStore('the document version counter changes with every document put and delete, and only then', async (s) => {
    const v0 = await s.documentsVersion();
    assert.equal(await s.documentsVersion(), v0);
    await s.putDocument('policy', 'p', 'rules: []', 'a', 1);
    const v1 = await s.documentsVersion();
    assert.notEqual(v1, v0);
    await s.appendAudit({ at: 1, actor: 'a', action: 'x', target: 't', result: 'ok' });
    await s.putResource('r/x', new Uint8Array([1]), 1);
    assert.equal(await s.documentsVersion(), v1, 'other writes leave it alone');
    assert.equal(await s.deleteDocument('policy', 'p', 'a', 2), true);
    const v2 = await s.documentsVersion();
    assert.notEqual(v2, v1);
    assert.equal(await s.deleteDocument('policy', 'p', 'a', 3), false);
    assert.equal(await s.documentsVersion(), v2, 'a delete that changes nothing does not bump it');
  });

  withStore('TPM activation challenges: taken once, atomically; expired and unknown ones explain themselves', async (s) => {
    await s.createTpmChallenge({ id: 'c1', data: { attester: 'node-a', n: 1 }, secretHash: 'ab'.repeat(32), expiresAt: 1000 });
    await s.createTpmChallenge({ id: 'c2', data: {}, secretHash: 'cd'.repeat(32), expiresAt: 500 });
    const both = await Promise.all([s.takeTpmChallenge('c1', 100), s.takeTpmChallenge('c1', 100)]);
    assert.deepEqual(both.map((b) => b.outcome).sort(), ['ok', 'used']);
    const got = both.find((b) => b.outcome === 'ok')!.challenge!;
    assert.deepEqual(got, { id: 'c1', data: { attester: 'node-a', n: 1 }, secretHash: 'ab'.repeat(32), expiresAt: 1000 });
    assert.equal(both.find((b) => b.outcome === 'used')!.challenge, undefined);
    assert.deepEqual(await s.takeTpmChallenge('c2', 500), { outcome: 'expired' });
    assert.deepEqual(await s.takeTpmChallenge('nope', 1), { outcome: 'unknown' });
    assert.equal(await s.purgeTpmChallenges(600), 1);
    assert.deepEqual(await s.takeTpmChallenge('c2', 1), { outcome: 'unknown' });
  });

  withStore('TPM AK registry: found by fingerprint, revocation is a timestamp and happens once', async (s) => {
    const rec = (id: string, fingerprint: string, at: number) => ({
      id, fingerprint, attester: `node-${id}`, akPublic: new Uint8Array([0, 2, id.charCodeAt(0), 255]), akName: '000b' + 'aa'.repeat(32),
      ekFingerprint: 'ee'.repeat(32), ekCertSubject: 'CN=ek', ekCertIssuer: 'CN=mfr', enrolledAt: at, revokedAt: null, revokedBy: null,
    });
    await s.putTpmAk(rec('a', 'f1', 10));
    await s.putTpmAk(rec('b', 'f2', 20));
    await s.putTpmAk(rec('c', 'f1', 30));
    await assert.rejects(s.putTpmAk(rec('a', 'f3', 40)));
    assert.deepEqual(await s.getTpmAk('b'), rec('b', 'f2', 20));
    assert.equal(await s.getTpmAk('zz'), undefined);
    assert.deepEqual((await s.findTpmAks('f1')).map((r) => r.id), ['c', 'a']);
    assert.deepEqual(await s.findTpmAks('f9'), []);
    assert.equal(await s.revokeTpmAk('a', 50, 'admin'), true);
    assert.equal(await s.revokeTpmAk('a', 60, 'admin2'), false);
    assert.equal(await s.revokeTpmAk('zz', 60, 'admin'), false);
    const a = await s.getTpmAk('a');
    assert.equal(a!.revokedAt, 50);
    assert.equal(a!.revokedBy, 'admin');
    assert.deepEqual([...a!.akPublic], [0, 2, 97, 255]);
    assert.deepEqual((await s.listTpmAks()).map((r) => [r.id, r.revokedAt]), [['a', 50], ['b', null], ['c', null]]);
    // Name binding: active records by attester or by EK; revoked ones (a) never.
    await s.putTpmAk({ ...rec('d', 'f4', 70), attester: 'node-b', ekFingerprint: 'dd'.repeat(32) });
    assert.deepEqual((await s.findActiveTpmAks('node-b', 'ff'.repeat(32))).map((r) => r.id), ['b', 'd']);
    assert.deepEqual((await s.findActiveTpmAks('nobody', 'ee'.repeat(32))).map((r) => r.id), ['b', 'c']);
    assert.deepEqual((await s.findActiveTpmAks('node-a', 'ff'.repeat(32))).map((r) => r.id), []);
  });

  withStore('documents are versioned; deletes are tombstones; old versions stay readable', async (s) => {
    const a = await s.putDocument('policy', 'p1', 'v1-body', 'alice', 1000);
    const b = await s.putDocument('policy', 'p1', 'v2-body', 'bob', 2000);
    await s.putDocument('reference-values', 'p1', 'rv', 'alice', 1500);
    assert.equal(a.version, 1);
    assert.equal(b.version, 2);
    assert.equal((await s.getDocument('policy', 'p1'))?.body, 'v2-body');
    assert.equal((await s.getDocument('policy', 'p1', 1))?.body, 'v1-body');
    assert.deepEqual((await s.listDocuments('policy')).map((d) => [d.id, d.version]), [['p1', 2]]);
    assert.equal(await s.deleteDocument('policy', 'p1', 'carol', 3000), true);
    assert.equal(await s.deleteDocument('policy', 'p1', 'carol', 3001), false);
    assert.equal(await s.getDocument('policy', 'p1'), undefined);
    assert.equal((await s.getDocument('policy', 'p1', 3))?.deleted, true);
    assert.equal((await s.getDocument('policy', 'p1', 2))?.actor, 'bob');
    assert.deepEqual(await s.listDocuments('policy'), []);
    assert.equal((await s.getDocument('reference-values', 'p1'))?.body, 'rv');
    assert.equal((await s.putDocument('policy', 'p1', 'again', 'dave', 4000)).version, 4);
  });

  withStore('resources round-trip, version on overwrite, delete', async (s) => {
    const secret = new Uint8Array([0, 1, 2, 255, 254]);
    assert.equal(await s.putResource('default/key/a', secret, 10), 1);
    assert.equal(await s.putResource('default/key/a', new Uint8Array([9]), 11), 2);
    await s.putResource('default/key/b', new Uint8Array(0), 12);
    const r = await s.getResource('default/key/a');
    assert.deepEqual([...r!.value], [9]);
    assert.equal(r!.version, 2);
    assert.deepEqual([...(await s.getResource('default/key/b'))!.value], []);
    assert.deepEqual(await s.listResources(), ['default/key/a', 'default/key/b']);
    assert.equal(await s.deleteResource('default/key/a'), true);
    assert.equal(await s.deleteResource('default/key/a'), false);
    assert.equal(await s.getResource('default/key/a'), undefined);
  });

  if (reopenRaw) {
    withStore('sessions keep no bearer credential in clear: id hashed, data sealed under the KEK', async (s) => {
      const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl';
      await s.putSession('0123456789abcdef0123456789abcdef', { state: 'attested', token }, 10_000);
      await s.putSession('fedcba9876543210fedcba9876543210', { state: 'authed' }, 10_000);
      const rows = await (await reopenRaw()).sessionRows();
      assert.equal(rows.length, 2);
      for (const r of rows) {
        assert.equal(r.id.includes('0123456789abcdef') || r.id.includes('fedcba98'), false, 'session id stored in clear');
        assert.equal(r.data.includes('eyJ') || r.data.includes('attested') || r.data.includes('authed'), false, 'session data stored in clear');
      }
      assert.deepEqual(await s.getSession('0123456789abcdef0123456789abcdef', 1), { state: 'attested', token });
      assert.equal(await s.getSession('0123456789abcdef0123456789abcde0', 1), undefined);
    });

    test(`${name}: a resource sealed for one path does not open under another (AAD = path)`, async () => {
      const s = await open();
      try {
        await s.putResource('r/t/one', Buffer.from('secret-one'), 1);
        await s.putResource('r/t/two', Buffer.from('secret-two'), 1);
        const raw = await reopenRaw();
        await raw.tamper('r/t/two'); // copies one's nonce+ciphertext into two's row
        await assert.rejects(s.getResource('r/t/two'), { code: 'RECORD_CORRUPT' });
        assert.equal(Buffer.from((await s.getResource('r/t/one'))!.value).toString(), 'secret-one');
      } finally {
        await s.close();
      }
    });
  }

  withStore('signing keys: private half sealed, rotation metadata kept', async (s) => {
    const k = { kid: 'k1', alg: 'ES256', publicJwk: { kty: 'EC', x: 'a' }, privateJwk: { kty: 'EC', d: 'secret' }, createdAt: 5, retiredAt: null, publishUntil: null };
    await s.putSigningKey(k);
    await s.putSigningKey({ ...k, kid: 'k2', createdAt: 6 });
    await s.retireSigningKey('k1', 7, 100);
    const ks = await s.listSigningKeys();
    assert.deepEqual(ks.map((x) => [x.kid, x.retiredAt, x.publishUntil]), [['k1', 7, 100], ['k2', null, null]]);
    assert.deepEqual(ks[0].privateJwk, { kty: 'EC', d: 'secret' });
    await s.deleteSigningKey('k1');
    assert.deepEqual((await s.listSigningKeys()).map((x) => x.kid), ['k2']);
  });

  withStore('nonces: single use, expiry, unknown, scope, purge', async (s) => {
    await s.createNonce('n1', 'as', 1000);
    await s.createNonce('n2', 'as', 1000);
    assert.equal(await s.consumeNonce('n1', 'kbs', 10), 'unknown');
    assert.equal(await s.consumeNonce('n1', 'as', 10), 'ok');
    assert.equal(await s.consumeNonce('n1', 'as', 11), 'used');
    assert.equal(await s.consumeNonce('n2', 'as', 1000), 'expired');
    assert.equal(await s.consumeNonce('nope', 'as', 10), 'unknown');
    await assert.rejects(s.createNonce('n1', 'as', 5000)); // a nonce value is never reissued
    assert.equal(await s.purgeNonces(1000), 2);
  });

  withStore('nonces: peek answers like consume without consuming', async (s) => {
    await s.createNonce('p1', 'as', 1000);
    assert.equal(await s.peekNonce('p1', 'as', 10), 'ok');
    assert.equal(await s.peekNonce('p1', 'as', 10), 'ok', 'a peek consumes nothing');
    assert.equal(await s.peekNonce('p1', 'kbs', 10), 'unknown');
    assert.equal(await s.peekNonce('p1', 'as', 1000), 'expired');
    assert.equal(await s.peekNonce('nope', 'as', 10), 'unknown');
    assert.equal(await s.consumeNonce('p1', 'as', 10), 'ok');
    assert.equal(await s.peekNonce('p1', 'as', 11), 'used');
  });

  withStore('nonces: consume with audit writes the record only when the nonce is consumed, in one commit', async (s) => {
    const e = (result: string) => ({ at: 5, actor: 'attester@x', action: 'attest', target: 'sgx', result, details: { n: 1 } });
    await s.createNonce('c1', 'as', 1000);
    await s.createNonce('c2', 'as', 100);
    assert.equal(await s.consumeNonceWithAudit('c1', 'as', 10, e('affirming')), 'ok');
    assert.equal(await s.consumeNonceWithAudit('c1', 'as', 11, e('second')), 'used');
    assert.equal(await s.consumeNonceWithAudit('c2', 'as', 100, e('late')), 'expired');
    assert.equal(await s.consumeNonceWithAudit('c1', 'kbs', 10, e('scope')), 'unknown');
    assert.equal(await s.consumeNonceWithAudit('nope', 'as', 10, e('unknown')), 'unknown');
    const rows = await s.listAudit();
    assert.deepEqual(rows.map((r) => [r.at, r.actor, r.action, r.target, r.result, r.details]), [[5, 'attester@x', 'attest', 'sgx', 'affirming', { n: 1 }]]);
    assert.equal(await s.consumeNonce('c1', 'as', 12), 'used');
    assert.equal(await s.consumeNonce('c2', 'as', 50), 'ok', 'a refused consume-with-audit left the nonce as it was');
  });

  withStore('nonces: concurrent consume-with-audit, exactly one wins and one record is written', async (s) => {
    await s.createNonce('race2', 'as', 10_000);
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => s.consumeNonceWithAudit('race2', 'as', 1, { at: i, actor: 'a', action: 'attest', target: 't', result: 'ok' })));
    assert.equal(outcomes.filter((o) => o === 'ok').length, 1);
    assert.equal(outcomes.filter((o) => o === 'used').length, 19);
    assert.equal((await s.listAudit()).length, 1);
  });

  withStore('audit retention: the log is truncated from its start up to the first record to keep, in chunks', async (s) => {
    for (const at of [1, 2, 3, 4, 5]) await s.appendAudit({ at, actor: 'a', action: 'x', target: 't', result: 'ok' });
    assert.equal(await s.purgeAudit(1), 0, 'nothing is older than the cutoff');
    assert.equal(await s.purgeAudit(4, 2), 2, 'at most maxRows per call');
    assert.deepEqual((await s.listAudit()).map((e) => e.at), [3, 4, 5]);
    assert.equal(await s.purgeAudit(4, 2), 1);
    assert.equal(await s.purgeAudit(4, 2), 0);
    assert.deepEqual((await s.listAudit()).map((e) => e.at), [4, 5]);
    assert.equal(await s.purgeAudit(100), 2, 'a cutoff after every record removes them all');
    assert.deepEqual(await s.listAudit(), []);
    const id = await s.appendAudit({ at: 7, actor: 'a', action: 'x', target: 't', result: 'ok' });
    assert.ok(id > 5, 'ids keep growing after a purge');
  });

  withStore('nonces: concurrent consumers, exactly one wins', async (s) => {
    await s.createNonce('race', 'as', 10_000);
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => s.consumeNonce('race', 'as', 1)));
    assert.equal(outcomes.filter((o) => o === 'ok').length, 1);
    assert.equal(outcomes.filter((o) => o === 'used').length, 19);
  });

  withStore('concurrent writes: one failing write does not undo the others (group commit isolation)', async (s) => {
    await s.createNonce('dup', 'as', 10_000);
    const r = await Promise.allSettled([
      s.createNonce('a1', 'as', 10_000), s.createNonce('dup', 'as', 10_000), s.createNonce('a2', 'as', 10_000),
      s.appendAudit({ at: 1, actor: 'x', action: 'y', target: 'z', result: 'ok' }),
    ]);
    assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    assert.equal(await s.consumeNonce('a1', 'as', 1), 'ok');
    assert.equal(await s.consumeNonce('a2', 'as', 1), 'ok');
    assert.equal((await s.listAudit()).length, 1);
  });

  withStore('sessions: upsert, expiry deletes on read, purge', async (s) => {
    await s.putSession('s1', { state: 'authed' }, 100);
    await s.putSession('s1', { state: 'attested' }, 200);
    await s.putSession('s2', { state: 'authed' }, 50);
    assert.deepEqual(await s.getSession('s1', 150), { state: 'attested' });
    assert.equal(await s.getSession('s1', 200), undefined);
    assert.equal(await s.getSession('s1', 10), undefined); // deleted by the expired read
    assert.equal(await s.purgeSessions(60), 1);
    await s.putSession('s3', {}, 100);
    await s.deleteSession('s3');
    assert.equal(await s.getSession('s3', 0), undefined);
  });

  withStore('audit log: appendAuditOnce keeps one record per idempotency key, also under concurrent replays', async (s) => {
    const e = { at: 5, actor: 'node-trust-controller:c', action: 'node-trust.untrusted', target: 'n1', result: 'AttestationRejected', details: { transition: 'ab' } };
    const plain = await s.appendAudit({ at: 4, actor: 'a', action: 'x', target: 't', result: 'ok' });
    const first = await s.appendAuditOnce(e, 'node-trust:n1:ab');
    assert.equal(first.created, true);
    assert.ok(first.id > plain);
    const replays = await Promise.all([1, 2, 3].map(() => s.appendAuditOnce({ ...e, at: 9, result: 'other' }, 'node-trust:n1:ab')));
    assert.deepEqual(replays, [1, 2, 3].map(() => ({ id: first.id, created: false })));
    const other = await s.appendAuditOnce(e, 'node-trust:n2:ab');
    assert.equal(other.created, true);
    const rows = await s.listAudit({ action: 'node-trust.untrusted' });
    assert.deepEqual(rows.map((r) => [r.id, r.result, r.key]), [[first.id, 'AttestationRejected', 'node-trust:n1:ab'], [other.id, 'AttestationRejected', 'node-trust:n2:ab']]);
    // Records without a key never collide with each other.
    await s.appendAudit({ at: 4, actor: 'a', action: 'x', target: 't', result: 'ok' });
    assert.equal((await s.listAudit({ action: 'x' })).length, 2);
  });

  withStore('audit log: append-only ids, filter by action, paging', async (s) => {
    const a = await s.appendAudit({ at: 1, actor: 'admin', action: 'resource.put', target: 'a/b/c', result: 'ok' });
    const b = await s.appendAudit({ at: 2, actor: 'tee', action: 'resource.get', target: 'a/b/c', result: 'denied', details: { rule: 'x' } });
    await s.appendAudit({ at: 3, actor: 'tee', action: 'resource.get', target: 'a/b/c', result: 'released' });
    assert.ok(b > a);
    const gets = await s.listAudit({ action: 'resource.get' });
    assert.deepEqual(gets.map((e) => e.result), ['denied', 'released']);
    assert.deepEqual(gets[0].details, { rule: 'x' });
    assert.deepEqual((await s.listAudit({ afterId: b })).map((e) => e.at), [3]);
    assert.equal((await s.listAudit({ limit: 1 })).length, 1);
    // The dashboard's recent view: newest first, paged with beforeId, filters still apply.
    assert.deepEqual((await s.listAudit({ newestFirst: true })).map((e) => e.at), [3, 2, 1]);
    assert.deepEqual((await s.listAudit({ newestFirst: true, limit: 1 })).map((e) => e.at), [3]);
    assert.deepEqual((await s.listAudit({ newestFirst: true, beforeId: b })).map((e) => e.id), [a]);
    assert.deepEqual((await s.listAudit({ newestFirst: true, action: 'resource.get', beforeId: b + 1 })).map((e) => e.result), ['denied']);
  });

  withStore('collateral cache entries upsert', async (s) => {
    await s.putCollateral({ key: 'pcs/tcb/00a067110000', body: Buffer.from('{}'), contentType: 'application/json', source: 'http://x', fetchedAt: 1, nextUpdate: 2 });
    await s.putCollateral({ key: 'pcs/tcb/00a067110000', body: Buffer.from('{"a":1}'), contentType: 'application/json', source: 'http://x', fetchedAt: 3, nextUpdate: null });
    const c = await s.getCollateral('pcs/tcb/00a067110000');
    assert.equal(Buffer.from(c!.body).toString(), '{"a":1}');
    assert.equal(c!.nextUpdate, null);
    assert.deepEqual((await s.listCollateral()).map((e) => e.fetchedAt), [3]);
    assert.equal(await s.getCollateral('nope'), undefined);
  });
}
