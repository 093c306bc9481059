import { importJWK, importSPKI, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { HttpProblem } from './problem.js';

export interface AdminIdentity {
  subject: string;
}

/** Who mints admin tokens (`coffer admin-token`, kbs-client) and for whom: checked on every admin request. */
export const ADMIN_TOKEN_ISSUER = 'coffer-admin';
export const ADMIN_TOKEN_AUDIENCE = 'coffer-admin-api';

export interface AdminAuthOptions {
  issuer?: string;
  audience?: string;
}

/**
 * Admin API authentication: a JWT signed (EdDSA or ES256) by the configured admin key — the shape of Trustee's
 * legacy `auth_public_key` + kbs-client's EdDSA token, plus `iss` and `aud` (like Trustee's bearer_jwt identity
 * providers): a token signed by the same key for another purpose is not an admin token. No key configured means
 * every admin call is refused: there is no "insecure allow all" mode.
 */
export class AdminAuth {
  private constructor(
    private readonly keys: { alg: string; key: CryptoKey | KeyObject | Uint8Array }[],
    private readonly claims: Required<AdminAuthOptions>,
  ) {}

  static async fromPublicKeys(keys: (string | JWK)[], o: AdminAuthOptions = {}): Promise<AdminAuth> {
    const out: { alg: string; key: CryptoKey | KeyObject | Uint8Array }[] = [];
    for (const k of keys) {
      if (typeof k === 'string') {
        const alg = /BEGIN PUBLIC KEY/.test(k) && k.length < 200 ? 'EdDSA' : 'ES256';
        // Ed25519 SPKI PEMs are short; try the likely algorithm first, then the other.
        try {
          out.push({ alg, key: await importSPKI(k, alg) });
        } catch {
          const other = alg === 'EdDSA' ? 'ES256' : 'EdDSA';
          out.push({ alg: other, key: await importSPKI(k, other) });
        }
      } else {
        if ('d' in k) throw new Error('the admin public key must not contain a private part');
        const alg = k.kty === 'OKP' ? 'EdDSA' : 'ES256';
        out.push({ alg, key: await importJWK(k, alg) });
      }
    }
    return new AdminAuth(out, { issuer: o.issuer ?? ADMIN_TOKEN_ISSUER, audience: o.audience ?? ADMIN_TOKEN_AUDIENCE });
  }

  /** Resolves with the admin identity, or throws a 401 problem. Never accepts a missing or unsigned token. */
  async check(authorization: string | undefined, now: number): Promise<AdminIdentity> {
    const m = /^Bearer\s+([A-Za-z0-9._~-]+)$/.exec(authorization ?? '');
    if (!m) throw new HttpProblem(401, 'admin-unauthenticated', 'Admin authentication required', 'admin endpoints need an Authorization: Bearer <admin token> header');
    for (const { alg, key } of this.keys) {
      try {
        const { payload } = await jwtVerify(m[1], key, {
          algorithms: [alg], currentDate: new Date(now), requiredClaims: ['exp', 'iss', 'aud'], issuer: this.claims.issuer, audience: this.claims.audience,
        });
        return { subject: typeof payload.sub === 'string' ? payload.sub : 'admin' };
      } catch {
        // try the next configured key
      }
    }
    throw new HttpProblem(401, 'admin-unauthenticated', 'Admin authentication failed', `the admin token is not signed by a configured admin key, has expired, or is not issued by '${this.claims.issuer}' for '${this.claims.audience}'`);
  }
}
