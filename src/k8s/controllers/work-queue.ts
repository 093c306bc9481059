/**
 * A de-duplicating, level-triggered work queue (controller-runtime style): keys added while queued are merged,
 * one worker processes keys serially, failures are retried with capped exponential backoff.
 */
export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly onError: (key: string, err: unknown, attempt: number) => void = () => {},
    private readonly baseDelayMs = 100,
    private readonly maxDelayMs = 10_000,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.pending.add(key);
    if (!this.running) this.idle = this.drain();
  }

  /** Adds `key` after `delayMs` (capped at 24 h, a setTimeout's range is ~24.8 days); for time-based work. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.add(key);
    }, Math.max(0, Math.min(delayMs, 24 * 3600_000)));
    t.unref?.();
    this.timers.add(t);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const key = this.pending.values().next().value as string;
        this.pending.delete(key);
        try {
          await this.handler(key);
          this.failures.delete(key);
        } catch (e) {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          this.onError(key, e, n);
          const t = setTimeout(() => {
            this.timers.delete(t);
            this.add(key);
          }, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1)));
          this.timers.add(t);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Resolves once nothing is queued or being processed (retries scheduled for later do not count). */
  async settled(): Promise<void> {
    while (this.running || this.pending.size > 0) await this.idle;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
