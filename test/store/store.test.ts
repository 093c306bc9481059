import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kek, PostgresStore, SqliteStore } from '../../src/store/index.js';
import { storeContract } from './contract.js';
import { pgSkip, startPostgres, type PgHandle } from '../support/postgres.js';

const kek = Kek.fromBytes(Buffer.alloc(32, 7));
const dir = mkdtempSync(join(tmpdir(), 'coffer-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite store', () => {
  let n = 0;
  let current = '';
  storeContract(
    'sqlite',
    async () => {
      current = join(dir, `s${n++}.db`);
      return SqliteStore.open({ path: current, kek });
    },
    async () => ({
      async tamper(path) {
        const db = new Database(current);
        const one = db.prepare(`SELECT nonce, ciphertext FROM resources WHERE path <> ?`).get(path) as { nonce: Buffer; ciphertext: Buffer };
        db.prepare('UPDATE resources SET nonce=?, ciphertext=? WHERE path=?').run(one.nonce, one.ciphertext, path);
        db.close();
      },
      async sessionRows() {
        const db = new Database(current);
        const rows = db.prepare('SELECT id, data FROM sessions').all() as { id: string; data: string }[];
        db.close();
        return rows;
      },
    }),
  );

  storeContract(
    'sqlite (inline writer)',
    async () => {
      current = join(dir, `s${n++}.db`);
      return SqliteStore.open({ path: current, kek, writer: 'inline' });
    },
    async () => ({
      async tamper(path) {
        const db = new Database(current);
        const one = db.prepare(`SELECT nonce, ciphertext FROM resources WHERE path <> ?`).get(path) as { nonce: Buffer; ciphertext: Buffer };
        db.prepare('UPDATE resources SET nonce=?, ciphertext=? WHERE path=?').run(one.nonce, one.ciphertext, path);
        db.close();
      },
      async sessionRows() {
        const db = new Database(current);
        const rows = db.prepare('SELECT id, data FROM sessions').all() as { id: string; data: string }[];
        db.close();
        return rows;
      },
    }),
  );

  // The whole contract again with the in-process record of issued nonces (the store `coffer up` opens on its data dir).
  storeContract('sqlite (exclusive)', async () => {
    current = join(dir, `s${n++}.db`);
    return SqliteStore.open({ path: current, kek, exclusive: true });
  });

  test('sqlite exclusive: the pre-check vouches for nonces this store issued without a read; the consume stays authoritative', async () => {
    const p = join(dir, 'excl.db');
    const s = SqliteStore.open({ path: p, kek, exclusive: true });
    const shared = SqliteStore.open({ path: join(dir, 'shared.db'), kek });
    try {
      for (const st of [s, shared]) await st.createNonce('mine', 'as', 1000);
      // Another connection consumes both rows behind the stores' backs (what exclusive promises never happens).
      for (const f of ['excl.db', 'shared.db']) {
        const raw = new Database(join(dir, f));
        raw.prepare(`UPDATE nonces SET used_at=1 WHERE nonce='mine'`).run();
        raw.close();
      }
      assert.equal(await shared.peekNonce('mine', 'as', 10), 'used', 'a shared file is always read');
      assert.equal(await s.peekNonce('mine', 'as', 10), 'ok', 'answered from the record, without a read');
      // ...but the single-use decision is the commit's: no second consume, no audit record.
      const e = { at: 10, actor: 'a', action: 'attest', target: 't', result: 'ok' };
      assert.equal(await s.consumeNonceWithAudit('mine', 'as', 10, e), 'used');
      assert.equal((await s.listAudit({ action: 'attest' })).length, 0);
      // Once a consume has been attempted the record no longer answers for it.
      assert.equal(await s.peekNonce('mine', 'as', 11), 'used');
      // Expired: the record does not vouch, the database explains.
      await s.createNonce('short', 'as', 100);
      assert.equal(await s.peekNonce('short', 'as', 100), 'expired');
      assert.equal(await s.peekNonce('short', 'kbs', 10), 'unknown', 'scope is part of the key');
      // A nonce issued by someone else (a previous process on this file) is read from the database.
      const raw = new Database(p);
      raw.prepare(`INSERT INTO nonces (nonce,scope,expires_at) VALUES ('older','as',1000)`).run();
      raw.close();
      assert.equal(await s.peekNonce('older', 'as', 10), 'ok');
      assert.equal(await s.consumeNonce('older', 'as', 10), 'ok');
      assert.equal(await s.peekNonce('older', 'as', 11), 'used');
      // A failed insert (a reissued value) records nothing.
      await assert.rejects(s.createNonce('mine', 'as', 5000));
      assert.equal(await s.peekNonce('mine', 'as', 12), 'used');
    } finally {
      await s.close();
      await shared.close();
    }
  });

  test('issued-nonce record: bounded; past the cap nonces are not recorded; the purge sweeps expired ones', async () => {
    const { IssuedNonces } = await import('../../src/store/issued-nonces.js');
    const r = new IssuedNonces(2);
    r.add('a', 's', 100);
    r.add('b', 's', 200);
    r.add('c', 's', 300);
    assert.equal(r.size, 2);
    assert.equal(r.fresh('c', 's', 10), false, 'past the cap: not recorded, the database answers');
    assert.equal(r.fresh('a', 's', 99), true);
    assert.equal(r.fresh('a', 's', 100), false, 'expired at its expiry, like the store');
    r.sweep(150);
    assert.equal(r.size, 1);
    r.add('c', 's', 300);
    assert.equal(r.fresh('c', 's', 10), true);
    r.forget('c', 's');
    assert.equal(r.fresh('c', 's', 10), false);
  });

  test('sqlite: WAL with synchronous=FULL; values are not stored in clear; a wrong KEK is refused at open', async () => {
    const p = join(dir, 'kek.db');
    const s = SqliteStore.open({ path: p, kek });
    await s.putResource('a/b/c', Buffer.from('TOP-SECRET-VALUE'), 1);
    await s.close();
    const db = new Database(p);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const row = db.prepare('SELECT ciphertext FROM resources').get() as { ciphertext: Buffer };
    assert.equal(row.ciphertext.includes(Buffer.from('TOP-SECRET')), false);
    db.close();
    assert.throws(() => SqliteStore.open({ path: p, kek: Kek.fromBytes(Buffer.alloc(32, 8)) }), { code: 'KEK_MISMATCH' });
    const again = SqliteStore.open({ path: p, kek });
    assert.equal(Buffer.from((await again.getResource('a/b/c'))!.value).toString(), 'TOP-SECRET-VALUE');
    await again.close();
  });

  test('sqlite: WAL checkpoints run in the background worker (the database file fills without inline checkpoints)', async () => {
    const p = join(dir, 'ckpt.db');
    const s = SqliteStore.open({ path: p, kek, checkpointIntervalMs: 100 });
    try {
      for (let i = 0; i < 40; i++) await s.putResource(`r/t/${i}`, Buffer.alloc(64 * 1024, i), i);
      const { statSync } = await import('node:fs');
      const deadline = Date.now() + 5000;
      while (statSync(p).size < 2 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(statSync(p).size >= 2 * 1024 * 1024, `database file is ${statSync(p).size} bytes: no checkpoint happened`);
    } finally {
      await s.close();
    }
  });

  test('KEK parsing: hex, base64, raw; bad sizes rejected', () => {
    const raw = Buffer.alloc(32, 1);
    assert.equal(Kek.parse(raw.toString('hex')).checkValue(), Kek.fromBytes(raw).checkValue());
    assert.equal(Kek.parse(raw.toString('base64') + '\n').checkValue(), Kek.fromBytes(raw).checkValue());
    assert.throws(() => Kek.parse('abcd'), { code: 'KEK_INVALID' });
    assert.throws(() => Kek.fromEnvOrFile({}, undefined), { code: 'KEK_MISSING' });
    assert.equal(Kek.fromEnvOrFile({ COFFER_KEK: raw.toString('hex') }).checkValue(), Kek.fromBytes(raw).checkValue());
  });
});

describe('PostgreSQL store', { skip: pgSkip }, () => {
  let pgh: PgHandle;
  let db = 0;
  let currentUrl = '';
  before(async () => {
    pgh = await startPostgres();
  });
  after(() => pgh?.stop());
  storeContract(
    'postgres',
    async () => {
      // A fresh database per test keeps tests independent, like a fresh SQLite file.
      const admin = new pg.Client({ connectionString: pgh.url });
      await admin.connect();
      const name = `t${db++}`;
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      currentUrl = pgh.url.replace(/\/postgres$/, `/${name}`);
      return PostgresStore.open({ connectionString: currentUrl, kek });
    },
    async () => ({
      async tamper(path) {
        const c = new pg.Client({ connectionString: currentUrl });
        await c.connect();
        await c.query(`UPDATE resources SET nonce=o.nonce, ciphertext=o.ciphertext FROM (SELECT nonce, ciphertext FROM resources WHERE path <> $1) o WHERE path=$1`, [path]);
        await c.end();
      },
      async sessionRows() {
        const c = new pg.Client({ connectionString: currentUrl });
        await c.connect();
        const r = await c.query('SELECT id, data FROM sessions');
        await c.end();
        return r.rows as { id: string; data: string }[];
      },
    }),
  );

  test('postgres: the attestation service runs on it (challenge, attest, replay refused, audit row)', async () => {
    const { buildAttestationApp } = await import('../../src/attestation/index.js');
    const store = await PostgresStore.open({ connectionString: pgh.url, kek });
    const { app } = await buildAttestationApp({ store, adminKeys: [], dev: true });
    try {
      await store.putDocument('reference-values', 'default', '{"tees":["sample"]}', 't', Date.now());
      const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json();
      const evidence = Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64');
      const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence, nonce } });
      assert.equal(r.json().status, 'affirming', r.body);
      assert.equal((await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence, nonce } })).statusCode, 409);
      assert.equal((await store.listAudit({ action: 'attest' })).length, 1);
    } finally {
      await app.close();
      await store.close();
    }
  });

  test('postgres: wrong KEK refused; migrations idempotent across reopen', async () => {
    const s = await PostgresStore.open({ connectionString: pgh.url, kek });
    await s.close();
    const again = await PostgresStore.open({ connectionString: pgh.url, kek });
    assert.deepEqual(await again.migrations(), [1, 2, 3, 4, 5]);
    await again.close();
    await assert.rejects(PostgresStore.open({ connectionString: pgh.url, kek: Kek.fromBytes(Buffer.alloc(32, 9)) }), { code: 'KEK_MISMATCH' });
  });
});
