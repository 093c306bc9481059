import { randomBytes } from 'node:crypto';
import type { AuditEntry, NonceOutcome, Store } from '../store/types.js';
import { HttpProblem } from './problem.js';

export const NONCE_SCOPE = 'attestation';

/** Challenge nonces: 32 random bytes (standard base64, like Trustee's), single-use, short-lived. */
export class NonceService {
  constructor(private readonly store: Store, private readonly ttlMs = 5 * 60_000) {}

  async issue(now: number): Promise<{ nonce: string; expiresAt: string }> {
    const nonce = randomBytes(32).toString('base64');
    const exp = now + this.ttlMs;
    await this.store.createNonce(nonce, NONCE_SCOPE, exp);
    return { nonce, expiresAt: new Date(exp).toISOString() };
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
