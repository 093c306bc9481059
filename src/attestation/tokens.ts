import { createPrivateKey, randomUUID, sign as nodeSign, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { CryptoBatch } from './crypto-batch.js';
import type { SigningKeyRecord, Store } from '../store/types.js';

export interface TokenIssuerOptions {
  /** Token lifetime (EAR `exp` - `iat`). Default 300 s, like Trustee's 5 minutes. */
  ttlSeconds?: number;
  issuer: string;
  /**
   * At most one store reload per this many ms for tokens with a `kid` this instance does not know (default 5 s):
   * anyone can send such tokens, and each must not cost a store query.
   */
  unknownKidReloadMs?: number;
  /** Where sign() makes its signatures (the service's, shared with evidence checks); none = at once. */
  batch?: CryptoBatch;
}

/**
 * ES256 token signing with keys kept in the store (private half sealed by the KEK). Rotation retires the active
 * key but keeps publishing its public half until every token it signed has expired.
 */
export class TokenIssuer {
  readonly ttlSeconds: number;
  private active?: { kid: string; key: KeyObject; header: string };
  private records: SigningKeyRecord[] = [];
  /** When an unknown kid last triggered a reload (service clock); -Infinity = never. */
  private lastKidReload = Number.NEGATIVE_INFINITY;

  /** `iss` as JSON text, once per issuer. */
  private issuerJson: string;

  constructor(private readonly store: Store, private o: TokenIssuerOptions) {
    this.ttlSeconds = o.ttlSeconds ?? 300;
    this.issuerJson = JSON.stringify(o.issuer);
  }

  get issuer(): string {
    return this.o.issuer;
  }

  /** Sets the `iss` of tokens signed from now on (e.g. once the listening port is known). */
  setIssuer(issuer: string): void {
    this.o = { ...this.o, issuer };
    this.issuerJson = JSON.stringify(issuer);
  }

  /** Loads keys from the store; creates the first one on a fresh store. Drops keys no token can need. */
  async init(now: number): Promise<void> {
    this.records = await this.store.listSigningKeys();
    for (const r of this.records) if (r.publishUntil !== null && r.publishUntil <= now) await this.store.deleteSigningKey(r.kid);
    this.records = this.records.filter((r) => r.publishUntil === null || r.publishUntil > now);
    const current = this.records.filter((r) => r.retiredAt === null).at(-1);
    if (!current) return this.rotate(now);
    this.active = activeKey(current.kid, current.privateJwk);
  }

  async rotate(now: number): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
    // Publish the old key for one more token lifetime (+ clock skew) so tokens it signed still verify.
    const publishUntil = now + (this.ttlSeconds + 60) * 1000;
    for (const r of this.records.filter((x) => x.retiredAt === null)) {
      await this.store.retireSigningKey(r.kid, now, publishUntil);
      r.retiredAt = now;
      r.publishUntil = publishUntil;
    }
    const rec: SigningKeyRecord = { kid, alg: 'ES256', publicJwk, privateJwk, createdAt: now, retiredAt: null, publishUntil: null };
    await this.store.putSigningKey(rec);
    this.records.push(rec);
    this.active = activeKey(kid, privateJwk);
  }

  /**
   * Re-reads the published keys from the store: replicas sharing a PostgreSQL store see each other's rotations.
   * The local active signing key is kept (each replica signs with its own until it rotates).
   */
  async refresh(now: number): Promise<void> {
    const all = await this.store.listSigningKeys();
    this.records = all.filter((r) => r.publishUntil === null || r.publishUntil > now);
  }

  /** Scheduled rotation: rotates when the active key is older than maxAgeMs. Returns whether it rotated. */
  async rotateIfOlderThan(maxAgeMs: number, now: number): Promise<boolean> {
    const active = this.records.find((r) => r.kid === this.active?.kid);
    if (active && now - active.createdAt < maxAgeMs) return false;
    await this.rotate(now);
    return true;
  }

  get activeKid(): string {
    if (!this.active) throw new Error('TokenIssuer.init() was not called');
    return this.active.kid;
  }

  jwks(now: number): { keys: JWK[] } {
    return {
      keys: this.records.filter((r) => r.publishUntil === null || r.publishUntil > now).map((r) => r.publicJwk as JWK),
    };
  }

  /**
   * Compact JWS of `claims` plus iss/iat/exp: the signing input built now, the ES256 signature made in the
   * service's CryptoBatch when one is configured (see crypto-batch.ts), else at once.
   */
  async sign(claims: JWTPayload, now: number): Promise<string> {
    const batch = this.o.batch;
    if (!batch) return this.signSync(claims, now);
    const { prefix, input, key } = this.signingInput(claims, now);
    const sig = await batch.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    return `${prefix}.${sig.toString('base64url')}`;
  }

  /**
   * Compact JWS, ES256 via node:crypto directly (P-1363 r||s encoding as JWS requires): a synchronous KeyObject
   * signature is several times cheaper per token than the WebCrypto path.
   */
  signSync(claims: JWTPayload, now: number): string {
    const { prefix, input, key } = this.signingInput(claims, now);
    return `${prefix}.${nodeSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  }

  /** `header.payload` (the token without its signature), the same as bytes to sign, and the active key. */
  private signingInput(claims: JWTPayload, now: number): { prefix: string; input: Buffer; key: KeyObject } {
    if (!this.active) throw new Error('TokenIssuer.init() was not called');
    const iat = Math.floor(now / 1000);
    // The protected header only changes with the key: encoded once per key (`active.header`). The payload is the
    // claims' JSON with iss/iat/exp appended as text (no copy of the claims object): byte for byte what
    // JSON.stringify({ ...claims, iss, iat, exp }) gives, which is still used when the claims carry one of those.
    const json = JSON.stringify(claims);
    let payload: Buffer;
    if (json.length > 2 && !Object.hasOwn(claims, 'iss') && !Object.hasOwn(claims, 'iat') && !Object.hasOwn(claims, 'exp')) {
      // The claims' UTF-8 without their closing '}' (one byte, so a byte-length cut is exact), then the tail, each
      // written straight into the payload buffer: no joined string to flatten first (~1.6 KB per token).
      const tail = `,"iss":${this.issuerJson},"iat":${iat},"exp":${iat + this.ttlSeconds}}`;
      const head = Buffer.byteLength(json) - 1;
      payload = Buffer.allocUnsafe(head + Buffer.byteLength(tail));
      payload.write(json, 0, head);
      payload.write(tail, head);
    } else {
      payload = Buffer.from(JSON.stringify({ ...claims, iss: this.o.issuer, iat, exp: iat + this.ttlSeconds }));
    }
    const header = this.active.header;
    const body = payload.toString('base64url');
    // The signing input `header.body` (ASCII) written straight into one buffer: no joined string to flatten and
    // re-encode; the token string is joined once, from the same two parts.
    const input = Buffer.allocUnsafe(header.length + 1 + body.length);
    input.write(header, 0, 'latin1');
    input[header.length] = 0x2e; // '.'
    input.write(body, header.length + 1, 'latin1');
    return { prefix: `${header}.${body}`, input, key: this.active.key };
  }

  /** Verifies a token this service issued (KBS resource requests): signature by a published key, iss, exp. */
  async verify(token: string, now: number): Promise<JWTPayload> {
    // A kid this instance has not seen may come from another replica's rotation: reload, then judge.
    const kid = (() => {
      try {
        return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')).kid as unknown;
      } catch {
        return undefined;
      }
    })();
    // Rate-limited: within the window an unknown kid is simply unknown (the token fails verification below).
    if (typeof kid === 'string' && !this.records.some((r) => r.kid === kid) && now - this.lastKidReload >= (this.o.unknownKidReloadMs ?? 5_000)) {
      this.lastKidReload = now;
      await this.refresh(now);
    }
    const { payload } = await jwtVerify(token, createLocalJWKSet(this.jwks(now)), {
      issuer: this.o.issuer,
      algorithms: ['ES256'],
      currentDate: new Date(now),
      requiredClaims: ['exp', 'iat'],
    });
    return payload;
  }
}

/** A signing key with its JWS protected header, base64url-encoded once. */
function activeKey(kid: string, privateJwk: unknown): { kid: string; key: KeyObject; header: string } {
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid })).toString('base64url');
  return { kid, key: createPrivateKey({ key: privateJwk as never, format: 'jwk' }), header };
}
