import { randomBytes } from 'node:crypto';
import type { AuditEntry, NonceOutcome, Store } from '../store/types.js';
import { HttpProblem } from './problem.js';

export const NONCE_SCOPE = 'attestation';

/**
 * Nonces wait in the pool at most this long, so a handed-out nonce keeps at least (lifetime - this) of its life;
 * its `expiresAt` is always exactly its stored expiry.
 */
export const POOL_MAX_AGE_MS = 1000;
/** Largest refill; the pool is used only from POOL_MIN_RATE issues per POOL_MAX_AGE_MS on. */
const POOL_MAX = 64;
const POOL_MIN_RATE = 4;

/**
 * Challenge nonces: 32 random bytes (standard base64, like Trustee's), single-use, short-lived.
 *
 * Under load, nonces are issued ahead in small batches (a pool): a batch's inserts join whatever the store writer
 * commits next, so handing one out costs no commit of its own. With the node agent's flow (each attestation's
 * answer carries the next challenge) that was a second commit, after the attestation's, on every request, and a
 * second fsync wait for the caller. A pooled nonce is stored (committed) before it is handed out, exactly like
 * one issued on demand; it is random and known to nobody until then, and one never handed out just expires.
 * The batch size follows the issue rate of the last window, so a quiet service issues on demand as before.
 */
export class NonceService {
  private readonly pool: { nonce: string; expiresAt: number; at: number }[] = [];
  private refilling = false;
  private window = { start: 0, count: 0, previous: 0 };

  constructor(private readonly store: Store, private readonly ttlMs = 5 * 60_000) {}

  async issue(now: number): Promise<{ nonce: string; expiresAt: string }> {
    const rate = this.rate(now);
    const pooled = this.take(now);
    if (rate >= POOL_MIN_RATE && this.pool.length < rate / 2 && !this.refilling) this.refill(now, Math.min(POOL_MAX, rate));
    if (pooled) return { nonce: pooled.nonce, expiresAt: new Date(pooled.expiresAt).toISOString() };
    const nonce = randomBytes(32).toString('base64');
    const exp = now + this.ttlMs;
    await this.store.createNonce(nonce, NONCE_SCOPE, exp);
    return { nonce, expiresAt: new Date(exp).toISOString() };
  }

  /** Issues in the current or the previous window, whichever is larger (this call counted). */
  private rate(now: number): number {
    const w = this.window;
    if (now < w.start || now >= w.start + POOL_MAX_AGE_MS) {
      w.previous = now >= w.start && now < w.start + 2 * POOL_MAX_AGE_MS ? w.count : 0;
      w.start = now;
      w.count = 0;
    }
    w.count++;
    return Math.max(w.count, w.previous);
  }

  /** The oldest pooled nonce still young enough, if any; older ones (or from a clock that went back) are dropped. */
  private take(now: number): { nonce: string; expiresAt: number } | undefined {
    while (this.pool.length) {
      const p = this.pool.shift()!;
      if (p.at <= now && now - p.at <= POOL_MAX_AGE_MS) return p;
    }
    return undefined;
  }

  /** Stores `n` fresh nonces in the background; each joins the pool once committed. A failed insert adds nothing. */
  private refill(now: number, n: number): void {
    this.refilling = true;
    const exp = now + this.ttlMs;
    const bytes = randomBytes(32 * n);
    const writes = Array.from({ length: n }, (_, i) => {
      const nonce = bytes.toString('base64', 32 * i, 32 * i + 32);
      return this.store.createNonce(nonce, NONCE_SCOPE, exp).then(
        () => void this.pool.push({ nonce, expiresAt: exp, at: now }),
        () => undefined, // the on-demand path reports store failures; the pool just stays smaller
      );
    });
    void Promise.all(writes).then(() => {
      this.refilling = false;
    });
  }

  /** Atomically consumes the nonce or throws the problem that explains why not. */
  async consume(nonce: string, now: number): Promise<void> {
    refuse(await this.store.consumeNonce(nonce, NONCE_SCOPE, now));
  }

  /** Throws the problem consume would throw now, without consuming: a spent nonce costs no verification. */
  async check(nonce: string, now: number): Promise<void> {
    refuse(await this.store.peekNonce(nonce, NONCE_SCOPE, now));
  }

  /**
   * Atomically consumes the nonce and appends the audit record of what it was used for, in one commit (the record
   * is written only if the nonce was consumed), or throws the problem that explains why not.
   */
  async consumeWithAudit(nonce: string, now: number, e: AuditEntry): Promise<void> {
    refuse(await this.store.consumeNonceWithAudit(nonce, NONCE_SCOPE, now, e));
  }

  /** Periodic cleanup; expired nonces are refused anyway, this only bounds the table. */
  async purge(now: number): Promise<number> {
    return this.store.purgeNonces(now);
  }
}

function refuse(r: NonceOutcome): void {
  if (r === 'ok') return;
  if (r === 'used') throw new HttpProblem(409, 'nonce-replayed', 'Nonce already used', 'this nonce was already used for an attestation; request a new challenge');
  if (r === 'expired') throw new HttpProblem(400, 'nonce-expired', 'Nonce expired', 'this nonce has expired; request a new challenge');
  throw new HttpProblem(400, 'nonce-unknown', 'Unknown nonce', 'this nonce was not issued by this service');
}
