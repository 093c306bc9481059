/**
 * Verified images by key (image reference × policy identity × trust root): a bounded LRU with a TTL, plus
 * in-flight sharing so concurrent admissions of the same image (a 500-replica scale-up) run one verification.
 * Only successes are kept: a failure is re-checked next time (it may be a registry outage that has ended).
 */
export interface VerificationCacheOptions {
  maxEntries?: number;
  ttlMs?: number;
  now?: () => number;
}

export class VerificationCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();
  private readonly inflight = new Map<string, Promise<T>>();
  private readonly max: number;
  private readonly ttl: number;
  private readonly now: () => number;
  hits = 0;
  misses = 0;

  constructor(o: VerificationCacheOptions = {}) {
    this.max = o.maxEntries ?? 4096;
    this.ttl = o.ttlMs ?? 5 * 60_000;
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached value, else the shared in-flight promise, else a new run of `compute`. */
  get(key: string, compute: () => Promise<T>): Promise<T> {
    const e = this.entries.get(key);
    if (e) {
      if (e.expires > this.now()) {
        // Refresh recency: Map iteration order is insertion order, so re-insert to mark most recently used.
        this.entries.delete(key);
        this.entries.set(key, e);
        this.hits++;
        return Promise.resolve(e.value);
      }
      this.entries.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const p = compute().then(
      (value) => {
        this.inflight.delete(key);
        this.entries.set(key, { value, expires: this.now() + this.ttl });
        while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
        return value;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  /** Synchronous peek (the webhook's fast path: no promise when every image is cached). */
  peek(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e || e.expires <= this.now()) return undefined;
    return e.value;
  }

  clear(): void {
    this.entries.clear();
  }
}
