import { CollateralError } from '../tee/common/errors.js';
import type { TeeType } from '../tee/common/claims.js';
import type { DcapCollateral, DcapCollateralRequest } from '../tee/dcap/collateral.js';
import { assembleCollateral, decodePcsResponse, PcsClient, pcsItemKey, pcsItemsFor, type PcsFetch, type PcsItem, type PcsItemRef } from '../tee/dcap/pcs.js';
import { chainPath, crlPath, KDS_BASE_URL, vcekPath, type FetchLike, type KeyKind, type SnpCollateralProvider, type VcekRequest } from '../tee/snp/collateral/kds.js';
import type { ProductLine } from '../tee/snp/abi/product.js';
import { parseCrl } from '../tee/snp/verify/crl.js';
import type { CollateralEntry, Store } from '../store/types.js';

/**
 * Collateral for real TEEs, cached in the store in the upstream's own shapes (Intel PCS responses with their
 * issuer-chain headers, AMD KDS bodies). Verification reads an in-memory copy of the store (no I/O per quote once
 * warm); a miss reads the store, then the upstream. A schedule re-fetches every item when its refresh is due
 * (refresh interval, or the item's own nextUpdate if earlier); an upstream failure keeps the last good copy.
 * A copy whose refresh is overdue (not refreshed for refreshInterval + grace) or that is past its nextUpdate is
 * served and reported stale; expired collateral is still rejected by the verifier itself.
 */
export interface UpstreamCollateralOptions {
  store: Store;
  /** Intel PCS (or PCCS) base URL; false = no DCAP collateral from upstream. */
  pcsUrl?: string | false;
  /** Root CA CRL URL (default: Intel's CRL distribution point, or the PCCS `rootcacrl` path). */
  rootCaCrlUrl?: string;
  /** AMD KDS base URL; false = none. */
  kdsUrl?: string | false;
  /** Default 1 h. */
  refreshIntervalMs?: number;
  /** An item not refreshed for refreshInterval + this is stale (default: one more refresh interval). */
  staleGraceMs?: number;
  timeoutMs?: number;
  fetch?: PcsFetch & FetchLike;
  clock?: () => number;
}

export interface UpstreamItemStatus {
  key: string;
  source: string;
  fetchedAt: string;
  nextUpdate: string | null;
  stale: string | null;
  lastError: string | null;
}

/** What one verification used: the verifier options and a sink that collects stale items. */
export interface CollateralForRequest {
  options: Record<string, unknown>;
  stale: string[];
}

/** What one (TEE, FMSPC, CA type) needs from the PCS cache; see UpstreamCollateral.plans. */
interface PcsPlan {
  refs: readonly PcsItemRef[];
  keys: readonly string[];
  key: string;
}
const MAX_PLANS = 1024;

interface Cached<T> {
  key: string;
  url: string;
  fetchedAt: number;
  nextUpdate: number | null;
  value: T;
  lastError?: string;
  lastAttempt?: number;
}

/** PCS responses are stored as JSON so the issuer-chain header survives beside the body. */
const PCS_TYPE = 'application/vnd.coffer.pcs-response+json';

function encodePcs(body: Uint8Array, issuerChain?: string): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ body: Buffer.from(body).toString('base64'), ...(issuerChain ? { issuerChain } : {}) })));
}
function decodePcs(b: Uint8Array): { body: Uint8Array; issuerChain?: string } {
  const j = JSON.parse(Buffer.from(b).toString('utf8')) as { body: string; issuerChain?: string };
  return { body: new Uint8Array(Buffer.from(j.body, 'base64')), issuerChain: j.issuerChain };
}

type Loader<T> = {
  key: string;
  url: string;
  /** Fetch from upstream: the store entry body + content type, or undefined when upstream says "none" (KDS 404). */
  fetch(): Promise<{ body: Uint8Array; contentType: string } | undefined>;
  decode(body: Uint8Array): { value: T; nextUpdate: number | null };
};

export class UpstreamCollateral {
  readonly refreshIntervalMs: number;
  private readonly graceMs: number;
  private readonly clock: () => number;
  private readonly pcs?: PcsClient;
  private readonly kdsBase?: string;
  private readonly mem = new Map<string, Cached<unknown>>();
  private readonly inflight = new Map<string, Promise<Cached<unknown> | undefined>>();
  /** How to re-fetch each known key (filled on first use, or from the store's key on start). */
  private readonly loaders = new Map<string, Loader<unknown>>();
  /** Frozen DcapCollateral per item combination, so the verifier's per-object caches hit on warm quotes. */
  private readonly assembled = new Map<string, { parts: unknown[]; coll: DcapCollateral }>();
  /**
   * Per distinct request (TEE, FMSPC, PCK CA type: all pcsItemsFor reads): its item refs, their cache keys and the
   * combination's key, built once instead of eight key strings and four refs per quote. Bounded: the FMSPC comes
   * from a certificate in the quote, checked only later.
   */
  private readonly plans = new Map<string, PcsPlan>();
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<unknown>;

  constructor(private readonly o: UpstreamCollateralOptions) {
    this.refreshIntervalMs = o.refreshIntervalMs ?? 3_600_000;
    this.graceMs = o.staleGraceMs ?? this.refreshIntervalMs;
    this.clock = o.clock ?? Date.now;
    if (o.pcsUrl !== false) this.pcs = new PcsClient({ baseUrl: o.pcsUrl, rootCaCrlUrl: o.rootCaCrlUrl, fetch: o.fetch, timeoutMs: o.timeoutMs });
    if (o.kdsUrl !== false) this.kdsBase = (o.kdsUrl ?? KDS_BASE_URL).replace(/\/+$/, '');
  }

  /** Verifier options for one verification of `tee`, or undefined when this cache serves nothing for it. */
  forRequest(tee: TeeType): CollateralForRequest | undefined {
    // Composite evidence needs its hardware report's collateral: PCS for an Azure TDX CVM's TD quote, KDS (with the
    // CRL) for an Azure SNP CVM's report — the same items, cache and refresh as plain TDX / SNP.
    if ((tee === 'sgx' || tee === 'tdx' || tee === 'az-tdx-vtpm') && this.pcs) {
      const stale: string[] = [];
      return { stale, options: { dcap: { provider: { getCollateral: (req: DcapCollateralRequest) => this.dcap(req, stale) } } } };
    }
    if ((tee === 'snp' || tee === 'az-snp-vtpm') && this.kdsBase) {
      const stale: string[] = [];
      const provider: SnpCollateralProvider = {
        vcek: (req: VcekRequest) => this.kds(vcekPath(req), 'der', stale),
        chain: (p: ProductLine, k: KeyKind) => this.kds(chainPath(p, k), 'pem', stale),
        crl: (p: ProductLine, k: KeyKind) => this.kds(crlPath(p, k), 'crl', stale),
      };
      return { stale, options: { snp: { provider } } };
    }
    return undefined;
  }

  private plan(req: DcapCollateralRequest): PcsPlan {
    const id = `${req.tee}|${req.fmspc}|${req.caType}`;
    let p = this.plans.get(id);
    if (!p) {
      const refs = Object.freeze(pcsItemsFor(req).map((r) => Object.freeze(r))); // throws on a bad FMSPC: not kept
      const keys = Object.freeze(refs.map(pcsItemKey));
      p = { refs, keys, key: keys.join('|') };
      if (this.plans.size >= MAX_PLANS) this.plans.delete(this.plans.keys().next().value as string);
      this.plans.set(id, p);
    }
    return p;
  }

  private async dcap(req: DcapCollateralRequest, stale: string[]): Promise<DcapCollateral> {
    const { refs, keys, key: k } = this.plan(req);
    // Hot path (every attestation of a known platform): each item in memory is the very value the last assembled
    // collateral was built from: that collateral, with no array built on the way.
    const hit = this.assembled.get(k);
    if (hit && this.sameParts(keys, hit.parts)) {
      const now = this.clock();
      for (const key of keys) {
        const c = this.mem.get(key)!;
        const why = this.staleReason(c, now);
        if (why) stale.push(`${c.key} (${why})`);
      }
      return hit.coll;
    }
    // Warm path: all four items in memory, no promise per item.
    const warm = keys.map((key) => this.mem.get(key));
    const items = warm.every((c) => c !== undefined) ? this.noteStale(warm as Cached<unknown>[], stale) : await Promise.all(refs.map((ref) => this.item(this.pcsLoader(ref), stale)));
    const parts = items.map((c) => {
      if (!c) throw new CollateralError('COLLATERAL_MISSING', 'PCS returned no collateral');
      return c.value as PcsItem;
    });
    if (hit && hit.parts.every((p, i) => p === parts[i])) return hit.coll;
    const c = assembleCollateral(parts);
    const coll = Object.freeze({ ...c, certs: Object.freeze(c.certs) as Uint8Array[], crls: Object.freeze(c.crls) as Uint8Array[] });
    this.assembled.set(k, { parts, coll });
    return coll;
  }

  private async kds(path: string, kind: 'der' | 'pem' | 'crl', stale: string[]): Promise<Uint8Array | undefined> {
    const c = await this.item(this.kdsLoader(path, kind), stale);
    return c?.value as Uint8Array | undefined;
  }

  private pcsLoader(ref: PcsItemRef): Loader<PcsItem> {
    const key = pcsItemKey(ref);
    const known = this.loaders.get(key) as Loader<PcsItem> | undefined;
    if (known) return known;
    const pcs = this.pcs!;
    const l: Loader<PcsItem> = {
      key,
      url: pcs.url(ref),
      fetch: async () => {
        const r = await pcs.fetch(ref);
        decodePcsResponse(ref, r); // refuse to cache what cannot be used
        return { body: encodePcs(r.body, r.issuerChain), contentType: PCS_TYPE };
      },
      decode: (body) => {
        const item = decodePcsResponse(ref, decodePcs(body));
        return { value: item, nextUpdate: item.nextUpdate ? item.nextUpdate.getTime() : null };
      },
    };
    this.loaders.set(key, l as Loader<unknown>);
    return l;
  }

  private kdsLoader(path: string, kind: 'der' | 'pem' | 'crl'): Loader<Uint8Array> {
    const key = `kds${path}`;
    const known = this.loaders.get(key) as Loader<Uint8Array> | undefined;
    if (known) return known;
    const url = `${this.kdsBase}${path}`;
    const fetchFn = this.o.fetch ?? (globalThis.fetch as unknown as FetchLike);
    const l: Loader<Uint8Array> = {
      key,
      url,
      fetch: async () => {
        let res: Awaited<ReturnType<FetchLike>>;
        try {
          res = await fetchFn(url, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000) });
        } catch (e) {
          throw new CollateralError('KDS_FETCH_FAILED', `AMD KDS request ${url} failed: ${(e as Error).message}`);
        }
        if (res.status === 404) return undefined;
        if (res.status !== 200) throw new CollateralError('KDS_FETCH_FAILED', `AMD KDS request ${url} returned HTTP ${res.status}`);
        const body = new Uint8Array(await res.arrayBuffer());
        if (kind === 'crl') parseCrl(body, `KDS CRL ${url}`);
        return { body, contentType: kind === 'pem' ? 'application/x-pem-file' : 'application/pkix-cert' };
      },
      decode: (body) => {
        // Only the CRL carries a next update; certificates are checked against their windows by the verifier.
        const next = kind === 'crl' ? parseCrl(body).nextUpdate : undefined;
        return { value: body, nextUpdate: next ? next.getTime() : null };
      },
    };
    this.loaders.set(key, l as Loader<unknown>);
    return l;
  }

  /** What item() reports for items already in memory: each one's stale reason, if any. */
  /** Every key's in-memory item holds exactly `parts[i]` (by identity). */
  private sameParts(keys: readonly string[], parts: readonly unknown[]): boolean {
    if (keys.length !== parts.length) return false;
    for (let i = 0; i < keys.length; i++) {
      const c = this.mem.get(keys[i]);
      if (c === undefined || c.value !== parts[i]) return false;
    }
    return true;
  }

  private noteStale(items: Cached<unknown>[], stale: string[]): Cached<unknown>[] {
    const now = this.clock();
    for (const c of items) {
      const why = this.staleReason(c, now);
      if (why) stale.push(`${c.key} (${why})`);
    }
    return items;
  }

  /** Memory, then store, then upstream (one fetch per key at a time). */
  private async item<T>(l: Loader<T>, stale: string[]): Promise<Cached<T> | undefined> {
    let c = this.mem.get(l.key) as Cached<T> | undefined;
    if (!c) {
      let p = this.inflight.get(l.key);
      if (!p) {
        p = this.load(l as Loader<unknown>).finally(() => this.inflight.delete(l.key));
        this.inflight.set(l.key, p);
      }
      c = (await p) as Cached<T> | undefined;
    }
    if (c) {
      const why = this.staleReason(c, this.clock());
      if (why) stale.push(`${l.key} (${why})`);
    }
    return c;
  }

  private async load(l: Loader<unknown>): Promise<Cached<unknown> | undefined> {
    const e = await this.o.store.getCollateral(l.key);
    if (e) {
      const c = this.cache(l, e);
      if (c) return c;
    }
    return this.fetchInto(l);
  }

  private cache(l: Loader<unknown>, e: Pick<CollateralEntry, 'body' | 'fetchedAt' | 'source'>): Cached<unknown> | undefined {
    try {
      const d = l.decode(e.body);
      const c: Cached<unknown> = { key: l.key, url: e.source, fetchedAt: e.fetchedAt, nextUpdate: d.nextUpdate, value: d.value };
      this.mem.set(l.key, c);
      return c;
    } catch {
      return undefined; // an unusable stored copy is re-fetched
    }
  }

  private async fetchInto(l: Loader<unknown>): Promise<Cached<unknown> | undefined> {
    const r = await l.fetch();
    if (!r) return undefined;
    const now = this.clock();
    const d = l.decode(r.body);
    await this.o.store.putCollateral({ key: l.key, body: r.body, contentType: r.contentType, source: l.url, fetchedAt: now, nextUpdate: d.nextUpdate });
    const c: Cached<unknown> = { key: l.key, url: l.url, fetchedAt: now, nextUpdate: d.nextUpdate, value: d.value };
    this.mem.set(l.key, c);
    return c;
  }

  staleReason(c: { fetchedAt: number; nextUpdate: number | null }, now: number): string | null {
    if (c.nextUpdate !== null && now > c.nextUpdate) return `past its nextUpdate ${new Date(c.nextUpdate).toISOString()}`;
    if (now > c.fetchedAt + this.refreshIntervalMs + this.graceMs) return `not refreshed since ${new Date(c.fetchedAt).toISOString()}`;
    return null;
  }

  private dueAt(c: Cached<unknown>): number {
    const byInterval = c.fetchedAt + this.refreshIntervalMs;
    return c.nextUpdate === null ? byInterval : Math.min(byInterval, c.nextUpdate);
  }

  /**
   * Re-fetches every known item whose refresh is due (all of them with `force`). A failure keeps the cached copy;
   * if another replica refreshed the store meanwhile, its copy is adopted.
   */
  async refresh(force = false): Promise<{ key: string; ok: boolean; error?: string }[]> {
    const now = this.clock();
    const out: { key: string; ok: boolean; error?: string }[] = [];
    for (const [key, l] of this.loaders) {
      const c = this.mem.get(key);
      if (c && !force && this.dueAt(c) > now) continue;
      try {
        const r = await this.fetchInto(l);
        out.push(r ? { key, ok: true } : { key, ok: false, error: 'upstream has no such item (404)' });
      } catch (e) {
        const msg = (e as Error).message;
        if (c) {
          c.lastError = msg;
          c.lastAttempt = now;
          const e2 = await this.o.store.getCollateral(key).catch(() => undefined);
          if (e2 && e2.fetchedAt > c.fetchedAt) this.cache(l, e2);
        }
        out.push({ key, ok: false, error: msg });
      }
    }
    return out;
  }

  status(now = this.clock()): UpstreamItemStatus[] {
    return [...this.mem.values()].sort((a, b) => a.key.localeCompare(b.key)).map((c) => ({
      key: c.key, source: c.url, fetchedAt: new Date(c.fetchedAt).toISOString(),
      nextUpdate: c.nextUpdate === null ? null : new Date(c.nextUpdate).toISOString(),
      stale: this.staleReason(c, now), lastError: c.lastError ?? null,
    }));
  }

  /** Schedule: check every min(interval, 1 min) which items are due; one refresh pass at a time. */
  start(onResult?: (r: { key: string; ok: boolean; error?: string }[]) => void): void {
    if (this.timer || this.refreshIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.refreshing) return;
      this.refreshing = this.refresh().then((r) => r.length && onResult?.(r), () => {}).finally(() => (this.refreshing = undefined));
    }, Math.min(this.refreshIntervalMs, 60_000));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
  }
}
