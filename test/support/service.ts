import { generateKeyPair, exportJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kek, SqliteStore } from '../../src/store/index.js';
import { ADMIN_TOKEN_AUDIENCE, ADMIN_TOKEN_ISSUER } from '../../src/attestation/admin-auth.js';
import type { Store } from '../../src/store/types.js';

export interface AdminKeys {
  publicJwk: JWK;
  /** An admin token; `iss`/`aud` default to Coffer's, null leaves the claim out. */
  token(o?: { expSeconds?: number; sub?: string; iss?: string | null; aud?: string | null }): Promise<string>;
}

export async function adminKeys(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<AdminKeys> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const publicJwk = await exportJWK(publicKey);
  return {
    publicJwk,
    token: async (o = {}) =>
      new SignJWT({
        sub: o.sub ?? 'test-admin',
        ...(o.iss === null ? {} : { iss: o.iss ?? ADMIN_TOKEN_ISSUER }),
        ...(o.aud === null ? {} : { aud: o.aud ?? ADMIN_TOKEN_AUDIENCE }),
      })
        .setProtectedHeader({ alg })
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (o.expSeconds ?? 3600))
        .sign(privateKey as CryptoKey),
  };
}

export function tempStore(): { store: Store; dir: string; cleanup(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-svc-'));
  const store = SqliteStore.open({ path: join(dir, 'coffer.db'), kek: Kek.fromBytes(Buffer.alloc(32, 3)) });
  return { store, dir, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** A settable clock for expiry tests. */
export function fakeClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}
