import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { ADMIN_TOKEN_AUDIENCE, ADMIN_TOKEN_ISSUER, ROLE_CLAIM } from '../attestation/admin-auth.js';

/**
 * The local data directory of `coffer up` / `coffer attestation` / `coffer kbs`:
 *   coffer.db           SQLite store (WAL)
 *   keys/kek            key-encryption key (0600) — a separate file, never inside the database; COFFER_KEK or
 *                       --kek-file override it (production: mount it from a secret store, not beside the DB)
 *   keys/admin.key      Ed25519 admin signing key (0600), used by `coffer admin-token`
 *   keys/admin.pub      its public half: what the services check admin tokens against
 */
export interface DataDir {
  dir: string;
  dbPath: string;
  kekPath: string;
  adminKeyPath: string;
  adminPubPath: string;
  /** Dev-only key that signs Coffer's dev-form sample evidence (private JWK with kid, 0600). */
  sampleKeyPath: string;
  created: string[];
}

export function defaultDataDir(env: Record<string, string | undefined>): string {
  return env.COFFER_DATA ?? join(homedir(), '.coffer');
}

export function openDataDir(dir: string, o: { create: boolean; kekFile?: string; env: Record<string, string | undefined> }): DataDir {
  const d = resolve(dir);
  const keys = join(d, 'keys');
  const dd: DataDir = {
    dir: d, dbPath: join(d, 'coffer.db'), kekPath: o.kekFile ? resolve(o.kekFile) : join(keys, 'kek'),
    adminKeyPath: join(keys, 'admin.key'), adminPubPath: join(keys, 'admin.pub'), sampleKeyPath: join(keys, 'sample-dev.jwk'), created: [],
  };
  if (!o.create) return dd;
  mkdirSync(keys, { recursive: true, mode: 0o700 });
  chmodSync(d, 0o700);
  chmodSync(keys, 0o700);
  // Create the database file 0600 up front: SQLite gives its -wal/-shm files the database file's mode.
  if (!existsSync(dd.dbPath)) writeFileSync(dd.dbPath, '', { mode: 0o600, flag: 'wx' });
  if (!o.env.COFFER_KEK && !o.kekFile && !existsSync(dd.kekPath)) {
    writeFileSync(dd.kekPath, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    dd.created.push(dd.kekPath);
  }
  if (!existsSync(dd.adminKeyPath)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(dd.adminKeyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    writeFileSync(dd.adminPubPath, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
    dd.created.push(dd.adminKeyPath, dd.adminPubPath);
  }
  return dd;
}

/** An EdDSA admin token (the shape of Trustee's legacy kbs-client admin JWT, plus iss/aud), valid `ttlSeconds`. */
export async function mintAdminToken(adminKeyPath: string, o: { ttlSeconds: number; subject: string; viewer?: boolean }): Promise<string> {
  const key = createPrivateKey(readFileSync(adminKeyPath));
  const now = Math.floor(Date.now() / 1000);
  // Viewer tokens carry `coffer.role: viewer`: the services let them read (dashboard, admin GETs), never write.
  return new SignJWT({ sub: o.subject, ...(o.viewer ? { [ROLE_CLAIM]: 'viewer' } : {}) })
    .setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ADMIN_TOKEN_ISSUER).setAudience(ADMIN_TOKEN_AUDIENCE)
    .setIssuedAt(now).setExpirationTime(now + o.ttlSeconds).sign(key);
}

/** Creates (once) the dev key for signed sample evidence; returns its public JWK (with kid) for the verifier. */
export function ensureSampleDevKey(d: DataDir): Record<string, unknown> {
  if (!existsSync(d.sampleKeyPath)) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `sample-dev-${randomBytes(4).toString('hex')}` };
    writeFileSync(d.sampleKeyPath, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
    d.created.push(d.sampleKeyPath);
  }
  const { d: _private, ...pub } = JSON.parse(readFileSync(d.sampleKeyPath, 'utf8')) as Record<string, unknown>;
  return pub;
}
