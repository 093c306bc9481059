import type { TeeType } from '../tee/common/claims.js';
import type { CollateralEntry, Store } from '../store/types.js';

/**
 * Collateral cache: upstream items (Intel PCS TCB info / QE identity / CRLs, AMD KDS certificates) fetched from
 * configurable base URLs on a schedule, kept in the store, and handed to verifiers from the store, so attestation
 * keeps working while the upstream is down. An entry past its own nextUpdate is stale: still served, reported.
 */
export interface CollateralItem {
  /** Store key, e.g. `pcs/tcbinfo/00906ED50000`. */
  key: string;
  /** Which TEE's verifier reads it. */
  tee: TeeType;
  /** Upstream name (a key of `upstreams`) and path under its base URL. */
  upstream: string;
  path: string;
}

export interface CollateralConfig {
  /** Upstream name → base URL (e.g. pcs → https://api.trustedservices.intel.com, kds → https://kdsintf.amd.com). */
  upstreams: Record<string, string>;
  items: CollateralItem[];
  /** Refresh period; 0 disables the schedule (manual refresh only). */
  refreshIntervalMs?: number;
  fetch?: typeof fetch;
  /** Per-request timeout so a dead upstream cannot stall the refresh loop. */
  timeoutMs?: number;
}

export interface RefreshResult {
  key: string;
  ok: boolean;
  error?: string;
}

export interface CachedCollateral {
  key: string;
  body: Uint8Array;
  fetchedAt: number;
  nextUpdate: number | null;
  stale: boolean;
}

/** Where an item says it stops being current: PCS JSON `nextUpdate` (any depth ≤ 2), else HTTP Expires/max-age. */
export function nextUpdateOf(body: Uint8Array, headers: Headers, now: number): number | null {
  try {
    const j = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
    const candidates = [j, ...Object.values(j).filter((v) => typeof v === 'object' && v !== null)] as Record<string, unknown>[];
    for (const c of candidates) {
      if (typeof c.nextUpdate === 'string' && !Number.isNaN(Date.parse(c.nextUpdate))) return Date.parse(c.nextUpdate);
    }
  } catch {
    // not JSON (DER CRL, PEM chain): fall back to HTTP caching headers
  }
  const maxAge = /max-age=(\d+)/.exec(headers.get('cache-control') ?? '');
  if (maxAge) return now + Number(maxAge[1]) * 1000;
  const exp = headers.get('expires');
  if (exp && !Number.isNaN(Date.parse(exp))) return Date.parse(exp);
  return null;
}

export class CollateralCache {
  private timer?: NodeJS.Timeout;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly store: Store, private readonly cfg: CollateralConfig, private readonly clock: () => number = Date.now) {
    this.fetchFn = cfg.fetch ?? fetch;
  }

  get items(): CollateralItem[] {
    return this.cfg.items;
  }

  async refresh(): Promise<RefreshResult[]> {
    const out: RefreshResult[] = [];
    for (const item of this.cfg.items) {
      const base = this.cfg.upstreams[item.upstream];
      if (!base) {
        out.push({ key: item.key, ok: false, error: `no upstream named ${item.upstream}` });
        continue;
      }
      const url = new URL(item.path, base.endsWith('/') ? base : `${base}/`).toString();
      try {
        const res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.cfg.timeoutMs ?? 5000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = new Uint8Array(await res.arrayBuffer());
        const now = this.clock();
        const entry: CollateralEntry = {
          key: item.key, body, contentType: res.headers.get('content-type') ?? 'application/octet-stream', source: url,
          fetchedAt: now, nextUpdate: nextUpdateOf(body, res.headers, now),
        };
        await this.store.putCollateral(entry);
        out.push({ key: item.key, ok: true });
      } catch (e) {
        // Keep the cached copy: an unreachable upstream must not erase collateral that still verifies.
        out.push({ key: item.key, ok: false, error: `${url}: ${(e as Error).message}` });
      }
    }
    return out;
  }

  async get(key: string, now = this.clock()): Promise<CachedCollateral | undefined> {
    const e = await this.store.getCollateral(key);
    if (!e) return undefined;
    return { key, body: e.body, fetchedAt: e.fetchedAt, nextUpdate: e.nextUpdate, stale: e.nextUpdate !== null && e.nextUpdate <= now };
  }

  /** Collateral for one TEE's verifier: `{ collateral: {key: bytes} }` under the TEE's option key, plus stale keys. */
  async forTee(tee: TeeType, now = this.clock()): Promise<{ entries: Record<string, Uint8Array>; stale: string[]; missing: string[] }> {
    const entries: Record<string, Uint8Array> = {};
    const stale: string[] = [];
    const missing: string[] = [];
    for (const item of this.cfg.items.filter((i) => i.tee === tee)) {
      const c = await this.get(item.key, now);
      if (!c) missing.push(item.key);
      else {
        entries[item.key] = c.body;
        if (c.stale) stale.push(item.key);
      }
    }
    return { entries, stale, missing };
  }

  async status(now = this.clock()): Promise<(Omit<CollateralEntry, 'body'> & { stale: boolean })[]> {
    return (await this.store.listCollateral()).map((e) => ({ ...e, stale: e.nextUpdate !== null && e.nextUpdate <= now }));
  }

  start(onResult?: (r: RefreshResult[]) => void): void {
    const every = this.cfg.refreshIntervalMs ?? 0;
    if (every <= 0 || this.timer) return;
    const tick = () => void this.refresh().then(onResult, () => {});
    tick();
    this.timer = setInterval(tick, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
