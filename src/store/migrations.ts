/**
 * Versioned schema migrations. Each version is applied once, in order, inside one transaction together with its
 * row in schema_migrations, so a crash mid-migration leaves the previous version intact. Never edit a released
 * version: add a new one. The two dialects differ only in types (BLOB/BYTEA, autoincrement).
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  name: string;
  sql: (d: Dialect) => string[];
}

const blob = (d: Dialect) => (d === 'sqlite' ? 'BLOB' : 'BYTEA');
const serial = (d: Dialect) => (d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY');

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: (d) => [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE documents (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
         created_at BIGINT NOT NULL, actor TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (kind, id, version))`,
      `CREATE TABLE resources (path TEXT PRIMARY KEY, nonce ${blob(d)} NOT NULL, ciphertext ${blob(d)} NOT NULL,
         version INTEGER NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
         private_nonce ${blob(d)} NOT NULL, private_ct ${blob(d)} NOT NULL, created_at BIGINT NOT NULL,
         retired_at BIGINT, publish_until BIGINT)`,
      `CREATE TABLE nonces (nonce TEXT PRIMARY KEY, scope TEXT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)`,
      `CREATE INDEX nonces_expiry ON nonces (expires_at)`,
      `CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
      `CREATE INDEX sessions_expiry ON sessions (expires_at)`,
      `CREATE TABLE audit (id ${serial(d)}, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
         target TEXT NOT NULL, result TEXT NOT NULL, details TEXT)`,
      `CREATE INDEX audit_action ON audit (action, id)`,
      `CREATE TABLE collateral (key TEXT PRIMARY KEY, body ${blob(d)} NOT NULL, content_type TEXT NOT NULL,
         source TEXT NOT NULL, fetched_at BIGINT NOT NULL, next_update BIGINT)`,
    ],
  },
  {
    version: 2,
    name: 'tpm attestation key enrolment',
    sql: (d) => [
      // Enrolled AKs (the Keylime registrar's table): found by SPKI fingerprint at attestation; revocation is a
      // timestamp, never a delete, so a revoked AK stays refused and its history stays readable.
      `CREATE TABLE tpm_aks (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, attester TEXT NOT NULL,
         ak_public ${blob(d)} NOT NULL, ak_name TEXT NOT NULL, ek_fingerprint TEXT NOT NULL, ek_cert_subject TEXT NOT NULL,
         ek_cert_issuer TEXT NOT NULL, enrolled_at BIGINT NOT NULL, revoked_at BIGINT, revoked_by TEXT)`,
      `CREATE INDEX tpm_aks_fingerprint ON tpm_aks (fingerprint)`,
      // One-time credential-activation challenges: the pending enrolment and a hash of the secret (never the
      // secret itself); taken atomically once, then dead whatever the answer.
      `CREATE TABLE tpm_challenges (id TEXT PRIMARY KEY, data TEXT NOT NULL, secret_hash TEXT NOT NULL,
         expires_at BIGINT NOT NULL, used_at BIGINT)`,
      `CREATE INDEX tpm_challenges_expiry ON tpm_challenges (expires_at)`,
    ],
  },
  {
    version: 3,
    name: 'audit idempotency keys',
    sql: () => [
      // Records that a writer may replay (the node-trust controller after a crash) carry a key: a replay is the
      // same row, not a second one. NULL for every other record (NULLs never collide in a UNIQUE index).
      `ALTER TABLE audit ADD COLUMN idem TEXT`,
      `CREATE UNIQUE INDEX audit_idem ON audit (idem)`,
    ],
  },
  {
    version: 4,
    name: 'document version counter',
    sql: () => [
      // One row, set to a fresh random value in the same transaction as every document write: a reader that caches
      // resolved policies checks this single primary-key row instead of re-reading every document (exact, also
      // across replicas).
      `CREATE TABLE doc_versions (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)`,
      `INSERT INTO doc_versions (id, v) VALUES (1, 0)`,
    ],
  },
  {
    version: 5,
    name: 'audit idempotency index without the unkeyed records',
    sql: () => [
      // Only replayable records carry a key; every other record (all attestations) added a NULL entry to the
      // unique index: an index insert and one more page in each commit, for nothing (NULLs never collide). The
      // partial index holds the keyed records only; upserts name it with the same WHERE.
      `DROP INDEX audit_idem`,
      `CREATE UNIQUE INDEX audit_idem_keyed ON audit (idem) WHERE idem IS NOT NULL`,
    ],
  },
];
