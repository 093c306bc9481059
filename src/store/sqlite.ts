import Database from 'better-sqlite3';
import { Kek, StoreError } from './kek.js';
import { MIGRATIONS } from './migrations.js';
import { Checkpointer } from './checkpointer.js';
import { WriterWorker, type WriteOp } from './writer.js';
import { IssuedNonces } from './issued-nonces.js';
import type {
  AuditEntry, AuditQuery, AuditRecord, CollateralEntry, DocumentKind, NonceOutcome, SigningKeyRecord, Store, StoredDocument, StoredResource,
  TpmAkRecord, TpmChallengeRecord,
} from './types.js';
import { docRow, keyAad, openSession, resourceAad, sealSession, sessionKey, tpmAkRow, tpmAkValues, tpmChallengeRow, TPM_AK_COLUMNS, type Row } from './rows.js';

export interface SqliteStoreOptions {
  path: string;
  kek: Kek;
  /**
   * 'FULL' (default): in WAL mode every commit fsyncs the WAL, so a committed write survives power loss and OS
   * crashes, not only process crashes. 'NORMAL' survives SIGKILL but may drop the last commits on power loss;
   * a secret store that tells an admin "stored" must not, so FULL is the default.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** Background WAL checkpoint period (ms) in a worker thread; 0 = SQLite's inline auto-checkpoint only. */
  checkpointIntervalMs?: number;
  /**
   * 'thread' (default for files): hot-path writes commit in a worker thread so WAL fsyncs never block the event
   * loop; 'inline': on the main thread (group commit per event-loop turn).
   */
  writer?: 'thread' | 'inline';
  /**
   * The caller guarantees that no other process uses this database file (`coffer up` on its own data directory,
   * under the data-dir lock). Then the nonces this store issued are remembered in memory and the pre-check before
   * a verification (peekNonce) needs no database read for them (the consume in the commit stays authoritative),
   * and the document version counter (documentsVersion) is kept between this store's own document writes.
   */
  exclusive?: boolean;
}

/** The embedded default store. better-sqlite3 is synchronous; the async facade keeps the Store contract. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly kek: Kek;
  private readonly stmt: Record<string, Database.Statement>;
  private checkpointer?: Checkpointer;
  private writer?: WriterWorker;
  private exclusive = false;
  private issued?: IssuedNonces;
  /** With `exclusive`: the document version counter, known without a read (only this store writes documents). */
  private docVersion?: number;
  private queue: { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];

  private constructor(db: Database.Database, kek: Kek) {
    this.db = db;
    this.kek = kek;
    const p = (s: string) => db.prepare(s);
    this.stmt = {
      docLatest: p(`SELECT * FROM documents WHERE kind=? AND id=? ORDER BY version DESC LIMIT 1`),
      docVersion: p(`SELECT * FROM documents WHERE kind=? AND id=? AND version=?`),
      docInsert: p(`INSERT INTO documents (kind,id,version,body,created_at,actor,deleted) VALUES (?,?,?,?,?,?,?)`),
      // A fresh random value (see Store.documentsVersion), 53 bits so it is exact as a JS number.
      docBump: p(`UPDATE doc_versions SET v = random() >> 11 WHERE id = 1`),
      docVersions: p(`SELECT v FROM doc_versions WHERE id = 1`).pluck(),
      docList: p(`SELECT d.* FROM documents d JOIN (SELECT id, MAX(version) v FROM documents WHERE kind=? GROUP BY id) m
                  ON d.id=m.id AND d.version=m.v WHERE d.kind=? AND d.deleted=0 ORDER BY d.id`),
      resGet: p(`SELECT * FROM resources WHERE path=?`),
      resUpsert: p(`INSERT INTO resources (path,nonce,ciphertext,version,updated_at) VALUES (?,?,?,1,?)
                    ON CONFLICT(path) DO UPDATE SET nonce=excluded.nonce, ciphertext=excluded.ciphertext,
                    version=resources.version+1, updated_at=excluded.updated_at RETURNING version`),
      resDel: p(`DELETE FROM resources WHERE path=?`),
      resList: p(`SELECT path FROM resources ORDER BY path`),
      keyPut: p(`INSERT INTO signing_keys (kid,alg,public_jwk,private_nonce,private_ct,created_at,retired_at,publish_until)
                 VALUES (?,?,?,?,?,?,?,?)`),
      keyList: p(`SELECT * FROM signing_keys ORDER BY created_at, kid`),
      keyRetire: p(`UPDATE signing_keys SET retired_at=?, publish_until=? WHERE kid=?`),
      keyDel: p(`DELETE FROM signing_keys WHERE kid=?`),
      nonceInsert: p(`INSERT INTO nonces (nonce,scope,expires_at) VALUES (?,?,?)`),
      nonceConsume: p(`UPDATE nonces SET used_at=? WHERE nonce=? AND scope=? AND used_at IS NULL AND expires_at>?`),
      nonceGet: p(`SELECT * FROM nonces WHERE nonce=? AND scope=?`),
      noncePurge: p(`DELETE FROM nonces WHERE expires_at<=?`),
      sesPut: p(`INSERT INTO sessions (id,data,expires_at) VALUES (?,?,?)
                 ON CONFLICT(id) DO UPDATE SET data=excluded.data, expires_at=excluded.expires_at`),
      sesGet: p(`SELECT * FROM sessions WHERE id=?`),
      sesDel: p(`DELETE FROM sessions WHERE id=?`),
      sesPurge: p(`DELETE FROM sessions WHERE expires_at<=?`),
      auditInsert: p(`INSERT INTO audit (at,actor,action,target,result,details) VALUES (?,?,?,?,?,?)`),
      auditInsertOnce: p(`INSERT INTO audit (at,actor,action,target,result,details,idem) VALUES (?,?,?,?,?,?,?) ON CONFLICT(idem) WHERE idem IS NOT NULL DO NOTHING RETURNING id`),
      auditByKey: p(`SELECT id FROM audit WHERE idem=?`),
      auditFirstKept: p(`SELECT id FROM audit WHERE at >= ? ORDER BY id LIMIT 1`),
      auditPurge: p(`DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < ? ORDER BY id LIMIT ?)`),
      colPut: p(`INSERT INTO collateral (key,body,content_type,source,fetched_at,next_update) VALUES (?,?,?,?,?,?)
                 ON CONFLICT(key) DO UPDATE SET body=excluded.body, content_type=excluded.content_type,
                 source=excluded.source, fetched_at=excluded.fetched_at, next_update=excluded.next_update`),
      colGet: p(`SELECT * FROM collateral WHERE key=?`),
      colList: p(`SELECT key,content_type,source,fetched_at,next_update FROM collateral ORDER BY key`),
      migrations: p(`SELECT version FROM schema_migrations ORDER BY version`),
      tpmChPut: p(`INSERT INTO tpm_challenges (id,data,secret_hash,expires_at) VALUES (?,?,?,?)`),
      tpmChTake: p(`UPDATE tpm_challenges SET used_at=? WHERE id=? AND used_at IS NULL AND expires_at>? RETURNING *`),
      tpmChGet: p(`SELECT used_at FROM tpm_challenges WHERE id=?`),
      tpmChPurge: p(`DELETE FROM tpm_challenges WHERE expires_at<=?`),
      tpmAkPut: p(`INSERT INTO tpm_aks (${TPM_AK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)`),
      tpmAkGet: p(`SELECT * FROM tpm_aks WHERE id=?`),
      tpmAkFind: p(`SELECT * FROM tpm_aks WHERE fingerprint=? ORDER BY enrolled_at DESC, id`),
      tpmAkList: p(`SELECT * FROM tpm_aks ORDER BY enrolled_at, id`),
      tpmAkActive: p(`SELECT * FROM tpm_aks WHERE revoked_at IS NULL AND (attester=? OR ek_fingerprint=?) ORDER BY enrolled_at, id`),
      tpmAkRevoke: p(`UPDATE tpm_aks SET revoked_at=?, revoked_by=? WHERE id=? AND revoked_at IS NULL`),
    };
  }

  static open(o: SqliteStoreOptions): SqliteStore {
    let db: Database.Database;
    try {
      db = new Database(o.path);
    } catch (e) {
      throw new StoreError('STORE_OPEN_FAILED', `cannot open SQLite database ${o.path}: ${(e as Error).message}`);
    }
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${o.synchronous ?? 'FULL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    checkKek(db, o.kek);
    const s = new SqliteStore(db, o.kek);
    if (o.exclusive) {
      s.exclusive = true;
      s.issued = new IssuedNonces();
    }
    if ((o.writer ?? 'thread') === 'thread' && o.path !== ':memory:' && o.path !== '') s.writer = new WriterWorker(o.path, o.synchronous ?? 'FULL');
    const every = o.checkpointIntervalMs ?? 500;
    if (every > 0) {
      // Inline checkpoints only as a safety net (~40 MB of WAL); the worker keeps the WAL short.
      db.pragma('wal_autocheckpoint = 10000');
      s.checkpointer = new Checkpointer(o.path, { intervalMs: every, synchronous: o.synchronous ?? 'FULL' });
    }
    return s;
  }

  /**
   * Group commit for the hot-path writes (nonces, sessions, audit): writes queued in the same event-loop turn
   * commit in ONE transaction (one WAL fsync under synchronous=FULL), each in its own savepoint so one failing
   * write does not undo the others. Each promise settles only after the commit: durability is unchanged.
   */
  private batched<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /** A hot-path write: on the writer thread when there is one, else group-committed inline. */
  private write(op: WriteOp): Promise<number | null> {
    if (this.writer) return this.writer.write(op);
    if (op[0] === 'nonceConsumeAudit') {
      const a = op[1];
      // batched() runs each write in its own savepoint: the audit row and the consume commit or roll back together.
      return this.batched(() => (this.stmt.nonceConsume.run(a[0], a[1], a[2], a[3]).changes !== 1 ? 0 : Number(this.stmt.auditInsert.run(a[4], a[5], a[6], a[7], a[8], a[9]).lastInsertRowid)));
    }
    const st = this.stmt[op[0]];
    return this.batched(() => {
      const r = st.run(...op[1]);
      return op[0] === 'nonceConsume' ? r.changes : op[0] === 'auditInsert' ? Number(r.lastInsertRowid) : null;
    });
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: { ok: boolean; v: unknown }[] = [];
    try {
      this.db.transaction(() => {
        for (const b of batch) {
          try {
            results.push({ ok: true, v: this.db.transaction(b.run)() });
          } catch (e) {
            results.push({ ok: false, v: e });
          }
        }
      }).immediate();
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => (results[i].ok ? b.resolve(results[i].v) : b.reject(results[i].v)));
  }

  async putDocument(kind: DocumentKind, id: string, body: string, actor: string, at: number): Promise<StoredDocument> {
    try {
      return this.db.transaction(() => {
        const last = this.stmt.docLatest.get(kind, id) as Row | undefined;
        const version = last ? Number(last.version) + 1 : 1;
        this.stmt.docInsert.run(kind, id, version, body, at, actor, 0);
        this.stmt.docBump.run();
        return { kind, id, version, body, createdAt: at, actor, deleted: false };
      }).immediate();
    } finally {
      this.docVersion = undefined;
    }
  }

  async getDocument(kind: DocumentKind, id: string, version?: number): Promise<StoredDocument | undefined> {
    const r = (version === undefined ? this.stmt.docLatest.get(kind, id) : this.stmt.docVersion.get(kind, id, version)) as Row | undefined;
    if (!r) return undefined;
    const d = docRow(r);
    return version === undefined && d.deleted ? undefined : d;
  }

  async documentsVersion(): Promise<number> {
    // Read on every attestation (the policy cache's check): the first read after each writer-thread commit pays
    // for a reset page cache. Under `exclusive` every document write is this store's, so the value is kept.
    if (this.docVersion !== undefined) return this.docVersion;
    const v = Number(this.stmt.docVersions.get());
    if (this.exclusive) this.docVersion = v;
    return v;
  }

  async listDocuments(kind: DocumentKind): Promise<StoredDocument[]> {
    return (this.stmt.docList.all(kind, kind) as Row[]).map(docRow);
  }

  async deleteDocument(kind: DocumentKind, id: string, actor: string, at: number): Promise<boolean> {
    try {
      return this.db.transaction(() => {
        const last = this.stmt.docLatest.get(kind, id) as Row | undefined;
        if (!last || Number(last.deleted)) return false;
        this.stmt.docInsert.run(kind, id, Number(last.version) + 1, '', at, actor, 1);
        this.stmt.docBump.run();
        return true;
      }).immediate();
    } finally {
      this.docVersion = undefined;
    }
  }

  async putResource(path: string, value: Uint8Array, at: number): Promise<number> {
    const { nonce, ciphertext } = this.kek.seal(value, resourceAad(path));
    const r = this.stmt.resUpsert.get(path, nonce, ciphertext, at) as Row;
    return Number(r.version);
  }

  async getResource(path: string): Promise<StoredResource | undefined> {
    const r = this.stmt.resGet.get(path) as Row | undefined;
    if (!r) return undefined;
    const value = this.kek.open(r.nonce as Uint8Array, r.ciphertext as Uint8Array, resourceAad(path));
    return { path, value, version: Number(r.version), updatedAt: Number(r.updated_at) };
  }

  async deleteResource(path: string): Promise<boolean> {
    return this.stmt.resDel.run(path).changes > 0;
  }

  async listResources(): Promise<string[]> {
    return (this.stmt.resList.all() as Row[]).map((r) => String(r.path));
  }

  async putSigningKey(k: SigningKeyRecord): Promise<void> {
    const { nonce, ciphertext } = this.kek.seal(Buffer.from(JSON.stringify(k.privateJwk)), keyAad(k.kid));
    this.stmt.keyPut.run(k.kid, k.alg, JSON.stringify(k.publicJwk), nonce, ciphertext, k.createdAt, k.retiredAt, k.publishUntil);
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (this.stmt.keyList.all() as Row[]).map((r) => this.keyRow(r));
  }

  private keyRow(r: Row): SigningKeyRecord {
    const kid = String(r.kid);
    const priv = this.kek.open(r.private_nonce as Uint8Array, r.private_ct as Uint8Array, keyAad(kid));
    return {
      kid, alg: String(r.alg), publicJwk: JSON.parse(String(r.public_jwk)), privateJwk: JSON.parse(Buffer.from(priv).toString('utf8')),
      createdAt: Number(r.created_at), retiredAt: r.retired_at === null ? null : Number(r.retired_at),
      publishUntil: r.publish_until === null ? null : Number(r.publish_until),
    };
  }

  async retireSigningKey(kid: string, retiredAt: number, publishUntil: number): Promise<void> {
    this.stmt.keyRetire.run(retiredAt, publishUntil, kid);
  }

  async deleteSigningKey(kid: string): Promise<void> {
    this.stmt.keyDel.run(kid);
  }

  async createNonce(nonce: string, scope: string, expiresAt: number): Promise<void> {
    await this.write(['nonceInsert', [nonce, scope, expiresAt]]);
    this.issued?.add(nonce, scope, expiresAt);
  }

  async consumeNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome> {
    this.issued?.forget(nonce, scope);
    // One conditional UPDATE is the atomic test-and-set; the SELECT only explains a refusal.
    if ((await this.write(['nonceConsume', [now, nonce, scope, now]])) === 1) return 'ok';
    const r = this.stmt.nonceGet.get(nonce, scope) as Row | undefined;
    if (!r) return 'unknown';
    if (r.used_at !== null) return 'used';
    return 'expired';
  }

  async peekNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome> {
    if (this.issued?.fresh(nonce, scope, now)) return 'ok';
    return nonceState(this.stmt.nonceGet.get(nonce, scope) as Row | undefined, now);
  }

  async consumeNonceWithAudit(nonce: string, scope: string, now: number, e: AuditEntry): Promise<NonceOutcome> {
    this.issued?.forget(nonce, scope);
    const details = e.details ? JSON.stringify(e.details) : null;
    if (Number(await this.write(['nonceConsumeAudit', [now, nonce, scope, now, e.at, e.actor, e.action, e.target, e.result, details]])) > 0) return 'ok';
    const r = nonceState(this.stmt.nonceGet.get(nonce, scope) as Row | undefined, now);
    return r === 'ok' ? 'expired' : r; // not consumed: used or expired (a fresh-looking row lost only to its expiry)
  }

  /** Writer-thread transactions and the hot-path writes they carried so far (undefined without a writer thread). */
  writerStats(): { commits: number; writes: number } | undefined {
    return this.writer ? { ...this.writer.stats } : undefined;
  }

  async purgeNonces(now: number): Promise<number> {
    this.issued?.sweep(now);
    return this.stmt.noncePurge.run(now).changes;
  }

  async putSession(id: string, data: Record<string, unknown>, expiresAt: number): Promise<void> {
    const key = sessionKey(id);
    await this.write(['sesPut', [key, sealSession(this.kek, key, data), expiresAt]]);
  }

  async getSession(id: string, now: number): Promise<Record<string, unknown> | undefined> {
    const key = sessionKey(id);
    const r = this.stmt.sesGet.get(key) as Row | undefined;
    if (!r) return undefined;
    if (Number(r.expires_at) <= now) {
      this.stmt.sesDel.run(key);
      return undefined;
    }
    return openSession(this.kek, key, String(r.data));
  }

  async deleteSession(id: string): Promise<void> {
    this.stmt.sesDel.run(sessionKey(id));
  }

  async purgeSessions(now: number): Promise<number> {
    return this.stmt.sesPurge.run(now).changes;
  }

  async appendAudit(e: AuditEntry): Promise<number> {
    const details = e.details ? JSON.stringify(e.details) : null;
    return Number(await this.write(['auditInsert', [e.at, e.actor, e.action, e.target, e.result, details]]));
  }

  async appendAuditOnce(e: AuditEntry, key: string): Promise<{ id: number; created: boolean }> {
    const details = e.details ? JSON.stringify(e.details) : null;
    // Rare writes (transitions): on this connection, committed (synchronous=FULL) before the promise resolves.
    return this.db.transaction(() => {
      const r = this.stmt.auditInsertOnce.get(e.at, e.actor, e.action, e.target, e.result, details, key) as Row | undefined;
      if (r) return { id: Number(r.id), created: true };
      return { id: Number((this.stmt.auditByKey.get(key) as Row).id), created: false };
    }).immediate();
  }

  async purgeAudit(before: number, maxRows = 10_000): Promise<number> {
    const keep = this.stmt.auditFirstKept.get(before) as Row | undefined;
    return this.stmt.auditPurge.run(keep ? Number(keep.id) : Number.MAX_SAFE_INTEGER, maxRows).changes;
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditRecord[]> {
    const where: string[] = ['id > ?'];
    const args: unknown[] = [q.afterId ?? 0];
    if (q.beforeId !== undefined) {
      where.push('id < ?');
      args.push(q.beforeId);
    }
    if (q.action) {
      where.push('action = ?');
      args.push(q.action);
    }
    args.push(Math.min(q.limit ?? 100, 1000));
    const rows = this.db.prepare(`SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY id${q.newestFirst ? ' DESC' : ''} LIMIT ?`).all(...args) as Row[];
    return rows.map(auditRow);
  }

  async putCollateral(e: CollateralEntry): Promise<void> {
    this.stmt.colPut.run(e.key, Buffer.from(e.body), e.contentType, e.source, e.fetchedAt, e.nextUpdate);
  }

  async getCollateral(key: string): Promise<CollateralEntry | undefined> {
    const r = this.stmt.colGet.get(key) as Row | undefined;
    return r ? { ...colMeta(r), body: new Uint8Array(r.body as Buffer) } : undefined;
  }

  async listCollateral(): Promise<Omit<CollateralEntry, 'body'>[]> {
    return (this.stmt.colList.all() as Row[]).map(colMeta);
  }

  async createTpmChallenge(c: TpmChallengeRecord): Promise<void> {
    this.stmt.tpmChPut.run(c.id, JSON.stringify(c.data), c.secretHash, c.expiresAt);
  }

  async takeTpmChallenge(id: string, now: number): Promise<{ outcome: NonceOutcome; challenge?: TpmChallengeRecord }> {
    // One conditional UPDATE … RETURNING is the atomic test-and-set; the SELECT only explains a refusal.
    const r = this.stmt.tpmChTake.get(now, id, now) as Row | undefined;
    if (r) return { outcome: 'ok', challenge: tpmChallengeRow(r) };
    const g = this.stmt.tpmChGet.get(id) as Row | undefined;
    return { outcome: !g ? 'unknown' : g.used_at !== null ? 'used' : 'expired' };
  }

  async purgeTpmChallenges(now: number): Promise<number> {
    return this.stmt.tpmChPurge.run(now).changes;
  }

  async putTpmAk(r: TpmAkRecord): Promise<void> {
    this.stmt.tpmAkPut.run(...tpmAkValues(r));
  }

  async getTpmAk(id: string): Promise<TpmAkRecord | undefined> {
    const r = this.stmt.tpmAkGet.get(id) as Row | undefined;
    return r ? tpmAkRow(r) : undefined;
  }

  async findTpmAks(fingerprint: string): Promise<TpmAkRecord[]> {
    return (this.stmt.tpmAkFind.all(fingerprint) as Row[]).map(tpmAkRow);
  }

  async listTpmAks(): Promise<TpmAkRecord[]> {
    return (this.stmt.tpmAkList.all() as Row[]).map(tpmAkRow);
  }

  async findActiveTpmAks(attester: string, ekFingerprint: string): Promise<TpmAkRecord[]> {
    return (this.stmt.tpmAkActive.all(attester, ekFingerprint) as Row[]).map(tpmAkRow);
  }

  async revokeTpmAk(id: string, at: number, actor: string): Promise<boolean> {
    return this.stmt.tpmAkRevoke.run(at, actor, id).changes > 0;
  }

  async migrations(): Promise<number[]> {
    return (this.stmt.migrations.all() as Row[]).map((r) => Number(r.version));
  }

  async close(): Promise<void> {
    this.flush(); // settle queued writes before closing
    await this.writer?.close();
    this.writer = undefined;
    await this.checkpointer?.stop();
    this.checkpointer = undefined;
    if (this.db.open) this.db.close();
  }
}

/** What consuming this nonce row now would answer (nothing is written). */
function nonceState(r: Row | undefined, now: number): NonceOutcome {
  if (!r) return 'unknown';
  if (r.used_at !== null) return 'used';
  return Number(r.expires_at) > now ? 'ok' : 'expired';
}

export function auditRow(r: Row): AuditRecord {
  return {
    id: Number(r.id), at: Number(r.at), actor: String(r.actor), action: String(r.action), target: String(r.target),
    result: String(r.result), ...(r.details ? { details: JSON.parse(String(r.details)) } : {}), ...(r.idem ? { key: String(r.idem) } : {}),
  };
}

export function colMeta(r: Row): Omit<CollateralEntry, 'body'> {
  return {
    key: String(r.key), contentType: String(r.content_type), source: String(r.source), fetchedAt: Number(r.fetched_at),
    nextUpdate: r.next_update === null ? null : Number(r.next_update),
  };
}

function migrate(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
  const done = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)));
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      for (const s of m.sql('sqlite')) db.exec(s);
      db.prepare('INSERT INTO schema_migrations (version,name,applied_at) VALUES (?,?,?)').run(m.version, m.name, Date.now());
    }).immediate();
  }
}

function checkKek(db: Database.Database, kek: Kek): void {
  const kcv = kek.checkValue();
  db.prepare(`INSERT INTO meta (key,value) VALUES ('kek_check',?) ON CONFLICT(key) DO NOTHING`).run(kcv);
  const r = db.prepare(`SELECT value FROM meta WHERE key='kek_check'`).get() as Row;
  if (r.value !== kcv) {
    db.close();
    throw new StoreError('KEK_MISMATCH', 'the key-encryption key does not match the one this store was created with');
  }
}
