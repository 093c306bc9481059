/**
 * Group commit across concurrent attestations (PostgreSQL's commit_delay/commit_siblings idea, in the service).
 *
 * Every attestation ends with one durable write (nonce consumed + audit record), and the store commits the writes
 * queued in the same event-loop turn as one transaction: one WAL fsync and one writer-thread round trip for the
 * batch. Left alone, concurrent requests reach that point a verification apart and commit one by one. The gate
 * lets a request that reaches its commit point wait while other attestations of this process are still being
 * processed, for at most `maxDelayMs`, then releases all waiters in the same turn so their writes share one commit.
 * A request that is alone (the usual case below saturation) never waits. Durability is unchanged: every request
 * still answers only after its own write committed.
 */
export class CommitGate {
  private inProgress = 0;
  private waiting: (() => void)[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly maxDelayMs = 3) {}

  /** One attestation starts: call `ready()` at its commit point, and `done()` when it ends (any path). */
  enter(): { ready(): Promise<void>; done(): void } {
    this.inProgress++;
    let left = false;
    const leave = () => {
      if (left) return false;
      left = true;
      this.inProgress--;
      return true;
    };
    return {
      ready: () => {
        leave();
        if (this.inProgress === 0) {
          this.release();
          return Promise.resolve();
        }
        return new Promise<void>((r) => {
          this.waiting.push(r);
          this.timer ??= setTimeout(() => this.release(), this.maxDelayMs);
        });
      },
      done: () => {
        // A request that ends without reaching its commit point (refused early, failed) must not hold the others.
        if (leave() && this.inProgress === 0) this.release();
      },
    };
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }
}
