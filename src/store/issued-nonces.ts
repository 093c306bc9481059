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
  /** Scope -> nonce -> expiry: the nonce string itself is the key (no composite key built per lookup). */
  private readonly live = new Map<string, Map<string, number>>();
  private count = 0;

  constructor(private readonly max = 131_072) {}

  /** Records a nonce once its insert has committed. */
  add(nonce: string, scope: string, expiresAt: number): void {
    if (this.count >= this.max) return;
    let m = this.live.get(scope);
    if (!m) this.live.set(scope, (m = new Map()));
    if (!m.has(nonce)) this.count++;
    m.set(nonce, expiresAt);
  }

  /** True only for a nonce recorded here, not handed to a consume yet, and not expired at `now`. */
  fresh(nonce: string, scope: string, now: number): boolean {
    const exp = this.live.get(scope)?.get(nonce);
    return exp !== undefined && exp > now;
  }

  /** Called as a consume starts (before it commits): from then on the database answers for this nonce. */
  forget(nonce: string, scope: string): void {
    if (this.live.get(scope)?.delete(nonce)) this.count--;
  }

  /** Drops expired entries (with the store's nonce purge). */
  sweep(now: number): void {
    for (const m of this.live.values()) {
      for (const [k, exp] of m) {
        if (exp <= now) {
          m.delete(k);
          this.count--;
        }
      }
    }
  }

  get size(): number {
    return this.count;
  }
}
