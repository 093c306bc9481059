import { importJWK, importSPKI, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { HttpProblem } from './problem.js';

/** `admin` may read and write; `viewer` (a token minted with `coffer admin-token --viewer`) may only read. */
export type AdminRole = 'admin' | 'viewer';

export interface AdminIdentity {
  subject: string;
  role: AdminRole;
}

/** Who mints admin tokens (`coffer admin-token`, kbs-client) and for whom: checked on every admin request. */
export const ADMIN_TOKEN_ISSUER = 'coffer-admin';
export const ADMIN_TOKEN_AUDIENCE = 'coffer-admin-api';

export interface AdminAuthOptions {
  issuer?: string;
  audience?: string;
}
/** The claim that marks a viewer token. Absent = admin (tokens minted before viewers existed stay admin tokens). */
export const ROLE_CLAIM = 'coffer.role';

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

  /**
   * For writes: resolves with an admin identity, or throws 401 (no or bad token) / 403 (a viewer token). Never
   * accepts a missing or unsigned token.
   */
  async check(authorization: string | undefined, now: number): Promise<AdminIdentity> {
    const who = await this.verify(authorization, now);
    if (who.role !== 'admin') throw new HttpProblem(403, 'admin-forbidden', 'Read-only credential', 'a viewer token can read, never write: use an admin token (coffer admin-token)');
    return who;
  }

  /** For reads: an admin or a viewer identity, or a 401 problem. */
  async verify(authorization: string | undefined, now: number): Promise<AdminIdentity> {
    const m = /^Bearer\s+([A-Za-z0-9._~-]+)$/.exec(authorization ?? '');
    if (!m) throw new HttpProblem(401, 'admin-unauthenticated', 'Admin authentication required', 'admin endpoints need an Authorization: Bearer <admin token> header');
    for (const { alg, key } of this.keys) {
      try {
        const { payload } = await jwtVerify(m[1], key, {
          algorithms: [alg], currentDate: new Date(now), requiredClaims: ['exp', 'iss', 'aud'], issuer: this.claims.issuer, audience: this.claims.audience,
        });
        const role = payload[ROLE_CLAIM] ?? 'admin';
        // An unknown role is not quietly an admin: the token is refused.
        if (role !== 'admin' && role !== 'viewer') break;
        return { subject: typeof payload.sub === 'string' ? payload.sub : role, role };
      } catch {
        // try the next configured key
      }
    }
    throw new HttpProblem(401, 'admin-unauthenticated', 'Admin authentication failed', `the admin token is not signed by a configured admin key, has expired, or is not issued by '${this.claims.issuer}' for '${this.claims.audience}'`);
  }
}
