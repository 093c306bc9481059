import pg from 'pg';
import { Kek, StoreError } from './kek.js';
import { MIGRATIONS } from './migrations.js';
import type {
  AuditEntry, AuditQuery, AuditRecord, CollateralEntry, DocumentKind, NonceOutcome, SigningKeyRecord, Store, StoredDocument, StoredResource,
  TpmAkRecord, TpmChallengeRecord,
} from './types.js';
import { docRow, keyAad, openSession, resourceAad, sealSession, sessionKey, tpmAkRow, tpmAkValues, tpmChallengeRow, TPM_AK_COLUMNS, type Row } from './rows.js';
import { auditRow, colMeta } from './sqlite.js';

/** A fresh random value, not an increment: see Store.documentsVersion (53 bits: exact as a JS number). */
const DOC_VERSION_BUMP = 'UPDATE doc_versions SET v = floor(random() * 9007199254740992)::bigint WHERE id = 1';

export interface PostgresStoreOptions {
  connectionString: string;
  kek: Kek;
  max?: number;
}

// Migrations of several replicas starting at once serialise on this advisory lock.
const MIGRATION_LOCK = 0x636f6666;

/** The store for several replicas. Same contract and schema as SQLite; transactions use SERIALIZABLE-free idioms. */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private constructor(private readonly pool: pg.Pool, private readonly kek: Kek) {}

  static async open(o: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: o.connectionString, max: o.max ?? 10 });
    pool.on('error', () => {}); // idle-client errors surface on the next query instead of crashing the process
    try {
      await migrate(pool);
      await checkKek(pool, o.kek);
    } catch (e) {
      await pool.end().catch(() => {});
      if (e instanceof StoreError) throw e;
      throw new StoreError('STORE_OPEN_FAILED', `cannot open PostgreSQL store: ${(e as Error).message}`);
    }
    return new PostgresStore(pool, o.kek);
  }

  private async q(sql: string, args: unknown[] = []): Promise<pg.QueryResult<Row>> {
    return this.pool.query<Row>(sql, args);
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async putDocument(kind: DocumentKind, id: string, body: string, actor: string, at: number): Promise<StoredDocument> {
    return this.tx(async (c) => {
      // Serialise writers of one document so versions stay dense and unique.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${kind}/${id}`]);
      const last = await c.query<Row>('SELECT MAX(version) v FROM documents WHERE kind=$1 AND id=$2', [kind, id]);
      const version = last.rows[0].v === null ? 1 : Number(last.rows[0].v) + 1;
      await c.query('INSERT INTO documents (kind,id,version,body,created_at,actor,deleted) VALUES ($1,$2,$3,$4,$5,$6,0)', [
        kind, id, version, body, at, actor,
      ]);
      await c.query(DOC_VERSION_BUMP);
      return { kind, id, version, body, createdAt: at, actor, deleted: false };
    });
  }

  async getDocument(kind: DocumentKind, id: string, version?: number): Promise<StoredDocument | undefined> {
    const r =
      version === undefined
        ? await this.q('SELECT * FROM documents WHERE kind=$1 AND id=$2 ORDER BY version DESC LIMIT 1', [kind, id])
        : await this.q('SELECT * FROM documents WHERE kind=$1 AND id=$2 AND version=$3', [kind, id, version]);
    if (r.rows.length === 0) return undefined;
    const d = docRow(r.rows[0]);
    return version === undefined && d.deleted ? undefined : d;
  }

  async documentsVersion(): Promise<number> {
    return Number((await this.q('SELECT v FROM doc_versions WHERE id = 1')).rows[0].v);
  }

  async listDocuments(kind: DocumentKind): Promise<StoredDocument[]> {
    const r = await this.q(
      `SELECT d.* FROM documents d JOIN (SELECT id, MAX(version) v FROM documents WHERE kind=$1 GROUP BY id) m
       ON d.id=m.id AND d.version=m.v WHERE d.kind=$1 AND d.deleted=0 ORDER BY d.id`,
      [kind],
    );
    return r.rows.map(docRow);
  }

  async deleteDocument(kind: DocumentKind, id: string, actor: string, at: number): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${kind}/${id}`]);
      const last = await c.query<Row>('SELECT version, deleted FROM documents WHERE kind=$1 AND id=$2 ORDER BY version DESC LIMIT 1', [kind, id]);
      if (last.rows.length === 0 || Number(last.rows[0].deleted)) return false;
      await c.query('INSERT INTO documents (kind,id,version,body,created_at,actor,deleted) VALUES ($1,$2,$3,$4,$5,$6,1)', [
        kind, id, Number(last.rows[0].version) + 1, '', at, actor,
      ]);
      await c.query(DOC_VERSION_BUMP);
      return true;
    });
  }

  async putResource(path: string, value: Uint8Array, at: number): Promise<number> {
    const { nonce, ciphertext } = this.kek.seal(value, resourceAad(path));
    const r = await this.q(
      `INSERT INTO resources (path,nonce,ciphertext,version,updated_at) VALUES ($1,$2,$3,1,$4)
       ON CONFLICT (path) DO UPDATE SET nonce=excluded.nonce, ciphertext=excluded.ciphertext,
       version=resources.version+1, updated_at=excluded.updated_at RETURNING version`,
      [path, nonce, ciphertext, at],
    );
    return Number(r.rows[0].version);
  }

  async getResource(path: string): Promise<StoredResource | undefined> {
    const r = await this.q('SELECT * FROM resources WHERE path=$1', [path]);
    if (r.rows.length === 0) return undefined;
    const row = r.rows[0];
    const value = this.kek.open(row.nonce as Buffer, row.ciphertext as Buffer, resourceAad(path));
    return { path, value, version: Number(row.version), updatedAt: Number(row.updated_at) };
  }

  async deleteResource(path: string): Promise<boolean> {
    return ((await this.q('DELETE FROM resources WHERE path=$1', [path])).rowCount ?? 0) > 0;
  }

  async listResources(): Promise<string[]> {
    return (await this.q('SELECT path FROM resources ORDER BY path')).rows.map((r) => String(r.path));
  }

  async putSigningKey(k: SigningKeyRecord): Promise<void> {
    const { nonce, ciphertext } = this.kek.seal(Buffer.from(JSON.stringify(k.privateJwk)), keyAad(k.kid));
    await this.q(
      `INSERT INTO signing_keys (kid,alg,public_jwk,private_nonce,private_ct,created_at,retired_at,publish_until)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
      [k.kid, k.alg, JSON.stringify(k.publicJwk), nonce, ciphertext, k.createdAt, k.retiredAt, k.publishUntil],
    );
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const r = await this.q('SELECT * FROM signing_keys ORDER BY created_at, kid');
    return r.rows.map((row) => {
      const kid = String(row.kid);
      const priv = this.kek.open(row.private_nonce as Buffer, row.private_ct as Buffer, keyAad(kid));
      return {
        kid, alg: String(row.alg), publicJwk: JSON.parse(String(row.public_jwk)),
        privateJwk: JSON.parse(Buffer.from(priv).toString('utf8')), createdAt: Number(row.created_at),
        retiredAt: row.retired_at === null ? null : Number(row.retired_at),
        publishUntil: row.publish_until === null ? null : Number(row.publish_until),
      };
    });
  }

  async retireSigningKey(kid: string, retiredAt: number, publishUntil: number): Promise<void> {
    await this.q('UPDATE signing_keys SET retired_at=$1, publish_until=$2 WHERE kid=$3', [retiredAt, publishUntil, kid]);
  }

  async deleteSigningKey(kid: string): Promise<void> {
    await this.q('DELETE FROM signing_keys WHERE kid=$1', [kid]);
  }

  async createNonce(nonce: string, scope: string, expiresAt: number): Promise<void> {
    await this.q('INSERT INTO nonces (nonce,scope,expires_at) VALUES ($1,$2,$3)', [nonce, scope, expiresAt]);
  }

  async consumeNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome> {
    // Row-locking UPDATE: of two concurrent consumers only one sees used_at IS NULL.
    const r = await this.q('UPDATE nonces SET used_at=$1 WHERE nonce=$2 AND scope=$3 AND used_at IS NULL AND expires_at>$1', [now, nonce, scope]);
    if (r.rowCount === 1) return 'ok';
    const g = await this.q('SELECT used_at FROM nonces WHERE nonce=$1 AND scope=$2', [nonce, scope]);
    if (g.rows.length === 0) return 'unknown';
    return g.rows[0].used_at !== null ? 'used' : 'expired';
  }

  async peekNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome> {
    const g = await this.q('SELECT used_at, expires_at FROM nonces WHERE nonce=$1 AND scope=$2', [nonce, scope]);
    if (g.rows.length === 0) return 'unknown';
    if (g.rows[0].used_at !== null) return 'used';
    return Number(g.rows[0].expires_at) > now ? 'ok' : 'expired';
  }

  async consumeNonceWithAudit(nonce: string, scope: string, now: number, e: AuditEntry): Promise<NonceOutcome> {
    // One statement, so one transaction and one commit: the audit row is inserted only if the UPDATE consumed the
    // nonce (row-locking, as in consumeNonce), and both commit or neither does.
    const r = await this.q(
      `WITH c AS (UPDATE nonces SET used_at=$1 WHERE nonce=$2 AND scope=$3 AND used_at IS NULL AND expires_at>$1 RETURNING 1)
       INSERT INTO audit (at,actor,action,target,result,details) SELECT $4::bigint,$5,$6,$7,$8,$9 FROM c RETURNING id`,
      [now, nonce, scope, e.at, e.actor, e.action, e.target, e.result, e.details ? JSON.stringify(e.details) : null],
    );
    if (r.rowCount === 1) return 'ok';
    const g = await this.q('SELECT used_at FROM nonces WHERE nonce=$1 AND scope=$2', [nonce, scope]);
    if (g.rows.length === 0) return 'unknown';
    return g.rows[0].used_at !== null ? 'used' : 'expired';
  }

  async purgeNonces(now: number): Promise<number> {
    return (await this.q('DELETE FROM nonces WHERE expires_at<=$1', [now])).rowCount ?? 0;
  }

  async putSession(id: string, data: Record<string, unknown>, expiresAt: number): Promise<void> {
    await this.q(
      `INSERT INTO sessions (id,data,expires_at) VALUES ($1,$2,$3)
       ON CONFLICT (id) DO UPDATE SET data=excluded.data, expires_at=excluded.expires_at`,
      [sessionKey(id), sealSession(this.kek, sessionKey(id), data), expiresAt],
    );
  }

  async getSession(id: string, now: number): Promise<Record<string, unknown> | undefined> {
    const key = sessionKey(id);
    const r = await this.q('SELECT * FROM sessions WHERE id=$1', [key]);
    if (r.rows.length === 0) return undefined;
    if (Number(r.rows[0].expires_at) <= now) {
      await this.deleteSession(id);
      return undefined;
    }
    return openSession(this.kek, key, String(r.rows[0].data));
  }

  async deleteSession(id: string): Promise<void> {
    await this.q('DELETE FROM sessions WHERE id=$1', [sessionKey(id)]);
  }

  async purgeSessions(now: number): Promise<number> {
    return (await this.q('DELETE FROM sessions WHERE expires_at<=$1', [now])).rowCount ?? 0;
  }

  async appendAudit(e: AuditEntry): Promise<number> {
    const r = await this.q(
      'INSERT INTO audit (at,actor,action,target,result,details) VALUES ($1,$2,$3,$4,$5,$6) RETURNING id',
      [e.at, e.actor, e.action, e.target, e.result, e.details ? JSON.stringify(e.details) : null],
    );
    return Number(r.rows[0].id);
  }

  async appendAuditOnce(e: AuditEntry, key: string): Promise<{ id: number; created: boolean }> {
    const details = e.details ? JSON.stringify(e.details) : null;
    const r = await this.q('INSERT INTO audit (at,actor,action,target,result,details,idem) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (idem) WHERE idem IS NOT NULL DO NOTHING RETURNING id', [e.at, e.actor, e.action, e.target, e.result, details, key]);
    if (r.rows.length) return { id: Number(r.rows[0].id), created: true };
    const old = await this.q('SELECT id FROM audit WHERE idem=$1', [key]);
    // Purged by retention between the two statements: nothing to return but a replay is still not a new record.
    return { id: old.rows.length ? Number(old.rows[0].id) : 0, created: false };
  }

  async purgeAudit(before: number, maxRows = 10_000): Promise<number> {
    const keep = await this.q('SELECT id FROM audit WHERE at >= $1 ORDER BY id LIMIT 1', [before]);
    const boundary = keep.rows.length ? Number(keep.rows[0].id) : Number.MAX_SAFE_INTEGER;
    const r = await this.q('DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < $1 ORDER BY id LIMIT $2)', [boundary, maxRows]);
    return r.rowCount ?? 0;
  }

  async listAudit(q: AuditQuery = {}): Promise<AuditRecord[]> {
    const args: unknown[] = [q.afterId ?? 0];
    let where = 'id > $1';
    if (q.beforeId !== undefined) {
      args.push(q.beforeId);
      where += ` AND id < $${args.length}`;
    }
    if (q.action) {
      args.push(q.action);
      where += ` AND action = $${args.length}`;
    }
    args.push(Math.min(q.limit ?? 100, 1000));
    const r = await this.q(`SELECT * FROM audit WHERE ${where} ORDER BY id${q.newestFirst ? ' DESC' : ''} LIMIT $${args.length}`, args);
    return r.rows.map(auditRow);
  }

  async putCollateral(e: CollateralEntry): Promise<void> {
    await this.q(
      `INSERT INTO collateral (key,body,content_type,source,fetched_at,next_update) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (key) DO UPDATE SET body=excluded.body, content_type=excluded.content_type, source=excluded.source,
       fetched_at=excluded.fetched_at, next_update=excluded.next_update`,
      [e.key, Buffer.from(e.body), e.contentType, e.source, e.fetchedAt, e.nextUpdate],
    );
  }

  async getCollateral(key: string): Promise<CollateralEntry | undefined> {
    const r = await this.q('SELECT * FROM collateral WHERE key=$1', [key]);
    return r.rows.length ? { ...colMeta(r.rows[0]), body: new Uint8Array(r.rows[0].body as Buffer) } : undefined;
  }

  async listCollateral(): Promise<Omit<CollateralEntry, 'body'>[]> {
    return (await this.q('SELECT key,content_type,source,fetched_at,next_update FROM collateral ORDER BY key')).rows.map(colMeta);
  }

  async createTpmChallenge(c: TpmChallengeRecord): Promise<void> {
    await this.q('INSERT INTO tpm_challenges (id,data,secret_hash,expires_at) VALUES ($1,$2,$3,$4)', [c.id, JSON.stringify(c.data), c.secretHash, c.expiresAt]);
  }

  async takeTpmChallenge(id: string, now: number): Promise<{ outcome: NonceOutcome; challenge?: TpmChallengeRecord }> {
    const r = await this.q('UPDATE tpm_challenges SET used_at=$1 WHERE id=$2 AND used_at IS NULL AND expires_at>$1 RETURNING *', [now, id]);
    if (r.rows.length === 1) return { outcome: 'ok', challenge: tpmChallengeRow(r.rows[0]) };
    const g = await this.q('SELECT used_at FROM tpm_challenges WHERE id=$1', [id]);
    return { outcome: g.rows.length === 0 ? 'unknown' : g.rows[0].used_at !== null ? 'used' : 'expired' };
  }

  async purgeTpmChallenges(now: number): Promise<number> {
    return (await this.q('DELETE FROM tpm_challenges WHERE expires_at<=$1', [now])).rowCount ?? 0;
  }

  async putTpmAk(r: TpmAkRecord): Promise<void> {
    await this.q(`INSERT INTO tpm_aks (${TPM_AK_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`, tpmAkValues(r));
  }

  async getTpmAk(id: string): Promise<TpmAkRecord | undefined> {
    const r = await this.q('SELECT * FROM tpm_aks WHERE id=$1', [id]);
    return r.rows.length ? tpmAkRow(r.rows[0]) : undefined;
  }

  async findTpmAks(fingerprint: string): Promise<TpmAkRecord[]> {
    return (await this.q('SELECT * FROM tpm_aks WHERE fingerprint=$1 ORDER BY enrolled_at DESC, id', [fingerprint])).rows.map(tpmAkRow);
  }

  async listTpmAks(): Promise<TpmAkRecord[]> {
    return (await this.q('SELECT * FROM tpm_aks ORDER BY enrolled_at, id')).rows.map(tpmAkRow);
  }

  async findActiveTpmAks(attester: string, ekFingerprint: string): Promise<TpmAkRecord[]> {
    return (await this.q('SELECT * FROM tpm_aks WHERE revoked_at IS NULL AND (attester=$1 OR ek_fingerprint=$2) ORDER BY enrolled_at, id', [attester, ekFingerprint])).rows.map(tpmAkRow);
  }

  async revokeTpmAk(id: string, at: number, actor: string): Promise<boolean> {
    return ((await this.q('UPDATE tpm_aks SET revoked_at=$1, revoked_by=$2 WHERE id=$3 AND revoked_at IS NULL', [at, actor, id])).rowCount ?? 0) > 0;
  }

  async migrations(): Promise<number[]> {
    return (await this.q('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

async function migrate(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const done = new Set((await c.query<Row>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await c.query('BEGIN');
      try {
        for (const s of m.sql('postgres')) await c.query(s);
        await c.query('INSERT INTO schema_migrations (version,name,applied_at) VALUES ($1,$2,$3)', [m.version, m.name, Date.now()]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    c.release();
  }
}

async function checkKek(pool: pg.Pool, kek: Kek): Promise<void> {
  const kcv = kek.checkValue();
  await pool.query(`INSERT INTO meta (key,value) VALUES ('kek_check',$1) ON CONFLICT (key) DO NOTHING`, [kcv]);
  const r = await pool.query<Row>(`SELECT value FROM meta WHERE key='kek_check'`);
  if (r.rows[0].value !== kcv) throw new StoreError('KEK_MISMATCH', 'the key-encryption key does not match the one this store was created with');
}
