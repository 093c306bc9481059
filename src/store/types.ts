/**
 * The one persistence contract of Coffer's services. Two implementations (SQLite, PostgreSQL) pass the same
 * contract tests. Times are epoch milliseconds passed in by the caller: the store reads no clock for decisions.
 */

export type DocumentKind = 'policy' | 'reference-values' | 'resource-policy' | 'attestation-policy';

export interface StoredDocument {
  kind: DocumentKind;
  id: string;
  version: number;
  body: string;
  createdAt: number;
  actor: string;
  deleted: boolean;
}

export interface StoredResource {
  path: string;
  value: Uint8Array;
  version: number;
  updatedAt: number;
}

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  publicJwk: Record<string, unknown>;
  /** Private JWK: sealed with the KEK in the store, plaintext only in memory. */
  privateJwk: Record<string, unknown>;
  createdAt: number;
  /** When the key stopped signing (rotation); null while active. */
  retiredAt: number | null;
  /** After this instant no token signed by the key is valid: drop it from the JWKS. */
  publishUntil: number | null;
}

export type NonceOutcome = 'ok' | 'unknown' | 'expired' | 'used';

export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  target: string;
  result: string;
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  limit?: number;
  action?: string;
  afterId?: number;
  beforeId?: number;
  newestFirst?: boolean;
}

export interface AuditRecord extends AuditEntry {
  id: number;
  /** The idempotency key of a record written with appendAuditOnce. */
  key?: string;
}

export interface CollateralEntry {
  key: string;
  body: Uint8Array;
  contentType: string;
  source: string;
  fetchedAt: number;
  /** Upstream's own next-update / expiry; after it the entry is stale (still served, flagged). */
  nextUpdate: number | null;
}

/** An attestation key enrolled after an EK certificate check and credential activation. */
export interface TpmAkRecord {
  id: string;
  /** SHA-256 of the AK's SubjectPublicKeyInfo, hex: how attestation finds the record. */
  fingerprint: string;
  /** The attester's self-declared name (node name, agent id): a label, never a trust input. */
  attester: string;
  /** TPM2B_PUBLIC of the AK whose Name the activation certified. */
  akPublic: Uint8Array;
  akName: string;
  ekFingerprint: string;
  ekCertSubject: string;
  ekCertIssuer: string;
  enrolledAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
}

/** A pending credential-activation challenge. */
export interface TpmChallengeRecord {
  id: string;
  data: Record<string, unknown>;
  /** SHA-256 of the credential secret, hex. */
  secretHash: string;
  expiresAt: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  /** Versioned documents (policies, reference values): every put is a new version, deletes are tombstones. */
  putDocument(kind: DocumentKind, id: string, body: string, actor: string, at: number): Promise<StoredDocument>;
  getDocument(kind: DocumentKind, id: string, version?: number): Promise<StoredDocument | undefined>;
  listDocuments(kind: DocumentKind): Promise<StoredDocument[]>;
  deleteDocument(kind: DocumentKind, id: string, actor: string, at: number): Promise<boolean>;
  /**
   * A value that changes in the same transaction as any document put/delete (by any connection or replica):
   * equal values mean no document changed in between. One primary-key read. Each write sets a fresh random value
   * rather than incrementing, so a database restored from a backup and written again cannot reach a value a
   * reader cached from the abandoned history (collision odds ~2^-52 per write).
   */
  documentsVersion(): Promise<number>;

  /** Secrets, sealed with AES-256-GCM under the KEK, AAD = resource path. */
  putResource(path: string, value: Uint8Array, at: number): Promise<number>;
  getResource(path: string): Promise<StoredResource | undefined>;
  deleteResource(path: string): Promise<boolean>;
  listResources(): Promise<string[]>;

  putSigningKey(k: SigningKeyRecord): Promise<void>;
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  retireSigningKey(kid: string, retiredAt: number, publishUntil: number): Promise<void>;
  deleteSigningKey(kid: string): Promise<void>;

  /** Single-use nonces: consume is atomic (two concurrent consumers: exactly one gets 'ok'). */
  createNonce(nonce: string, scope: string, expiresAt: number): Promise<void>;
  consumeNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome>;
  /** What consumeNonce would answer now, without consuming (a cheap refusal before expensive work). */
  peekNonce(nonce: string, scope: string, now: number): Promise<NonceOutcome>;
  /**
   * Consumes the nonce and appends `e` in ONE transaction (one commit): the record is written only when the nonce
   * was consumed ('ok'); otherwise nothing is written. Atomic like consumeNonce. If the record cannot be written
   * the call fails and the nonce may stay consumed (as with consumeNonce then a failed appendAudit), never the
   * other way round.
   */
  consumeNonceWithAudit(nonce: string, scope: string, now: number, e: AuditEntry): Promise<NonceOutcome>;
  purgeNonces(now: number): Promise<number>;

  putSession(id: string, data: Record<string, unknown>, expiresAt: number): Promise<void>;
  /** Undefined when absent or expired (expired sessions are deleted on read). */
  getSession(id: string, now: number): Promise<Record<string, unknown> | undefined>;
  deleteSession(id: string): Promise<void>;
  purgeSessions(now: number): Promise<number>;

  appendAudit(e: AuditEntry): Promise<number>;
  /**
   * Appends `e` under the idempotency key `key` unless a record with that key exists; durable when it resolves.
   * Returns the record's id and whether this call created it (false: a replay, the first record stands).
   */
  appendAuditOnce(e: AuditEntry, key: string): Promise<{ id: number; created: boolean }>;
  /** Oldest first after `afterId`; with `newestFirst`, newest first before `beforeId` (the dashboard's recent view). */
  listAudit(q?: AuditQuery): Promise<AuditRecord[]>;
  /**
   * Retention: removes up to `maxRows` of the oldest audit records, those before the first record (in append
   * order) whose `at` is >= `before`. The log is truncated from its start, like a log segment, so a purge costs
   * the rows it removes rather than a scan, and needs no index on `at` (which every insert would pay for).
   * Returns how many were removed; call again while it returns `maxRows`.
   */
  purgeAudit(before: number, maxRows?: number): Promise<number>;

  putCollateral(e: CollateralEntry): Promise<void>;
  getCollateral(key: string): Promise<CollateralEntry | undefined>;
  listCollateral(): Promise<Omit<CollateralEntry, 'body'>[]>;

  /** TPM AK enrolment: the registry and its one-time activation challenges. */
  createTpmChallenge(c: TpmChallengeRecord): Promise<void>;
  /** Atomically marks the challenge used and returns it; any second take (or an expired one) gets no record. */
  takeTpmChallenge(id: string, now: number): Promise<{ outcome: NonceOutcome; challenge?: TpmChallengeRecord }>;
  purgeTpmChallenges(now: number): Promise<number>;
  putTpmAk(r: TpmAkRecord): Promise<void>;
  getTpmAk(id: string): Promise<TpmAkRecord | undefined>;
  /** Every record for the fingerprint, revoked ones too, newest first. */
  findTpmAks(fingerprint: string): Promise<TpmAkRecord[]>;
  listTpmAks(): Promise<TpmAkRecord[]>;
  /** Active (not revoked) records enrolled under `attester` or with the EK `ekFingerprint`: enrolment's name binding. */
  findActiveTpmAks(attester: string, ekFingerprint: string): Promise<TpmAkRecord[]>;
  /** False when absent or already revoked. */
  revokeTpmAk(id: string, at: number, actor: string): Promise<boolean>;

  /** Applied migration versions, ascending. */
  migrations(): Promise<number[]>;
  close(): Promise<void>;
}
