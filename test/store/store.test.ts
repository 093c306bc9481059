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
    assert.deepEqual(await again.migrations(), [1, 2, 3, 4]);
    await again.close();
    await assert.rejects(PostgresStore.open({ connectionString: pgh.url, kek: Kek.fromBytes(Buffer.alloc(32, 9)) }), { code: 'KEK_MISMATCH' });
  });
});
