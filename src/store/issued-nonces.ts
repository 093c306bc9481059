/**
 * Nonces this store issued and has not seen consumed, with their expiry: lets the read-only pre-check before a
 * verification answer "fresh" without a database read. Only sound where no other process can consume these
 * nonces (a SQLite file owned by this process, see SqliteStoreOptions.exclusive); even then it is advisory:
 * the conditional UPDATE in the commit stays the single-use decision. Anything the record cannot vouch for
 * (never recorded, dropped at the cap, expired) is asked of the database, so a miss costs one read, never a
 * wrong answer. Bounded: past `max` entries new nonces are simply not recorded until the periodic nonce purge
 * sweeps the expired ones.
 */
export class IssuedNonces {
  private readonly live = new Map<string, number>();

  constructor(private readonly max = 131_072) {}

  /** Records a nonce once its insert has committed. */
  add(nonce: string, scope: string, expiresAt: number): void {
    if (this.live.size < this.max) this.live.set(key(nonce, scope), expiresAt);
  }

  /** True only for a nonce recorded here, not handed to a consume yet, and not expired at `now`. */
  fresh(nonce: string, scope: string, now: number): boolean {
    const exp = this.live.get(key(nonce, scope));
    return exp !== undefined && exp > now;
  }

  /** Called as a consume starts (before it commits): from then on the database answers for this nonce. */
  forget(nonce: string, scope: string): void {
    this.live.delete(key(nonce, scope));
  }

  /** Drops expired entries (with the store's nonce purge). */
  sweep(now: number): void {
    for (const [k, exp] of this.live) if (exp <= now) this.live.delete(k);
  }

  get size(): number {
    return this.live.size;
  }
}

const key = (nonce: string, scope: string): string => `${scope}\n${nonce}`;
