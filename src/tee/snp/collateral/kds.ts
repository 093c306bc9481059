import { CollateralError } from '../../common/errors.js';
import type { ProductLine } from '../abi/product.js';
import type { TcbVersion } from '../abi/tcb.js';

/**
 * AMD Key Distribution Service URL layout (KDS spec 57230; go-sev-guest kds.go, trustee snp/mod.rs):
 *   VCEK  /vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..  (Turin: hwid = CHIP_ID[0..8], fmcSPL first)
 *   chain /vcek/v1/{product}/cert_chain (ASK then ARK), /vlek/v1/{product}/cert_chain (ASVK then ARK)
 *   CRL   /vcek/v1/{product}/crl, /vlek/v1/{product}/crl
 * VLEK leaf certificates need cloud-provider credentials and are never fetched.
 */
export const KDS_BASE_URL = 'https://kdsintf.amd.com';

export type KeyKind = 'vcek' | 'vlek';

export interface VcekRequest {
  product: ProductLine;
  chipId: Uint8Array;
  tcb: TcbVersion;
}

export function vcekPath(req: VcekRequest): string {
  const turin = req.product === 'Turin';
  const hwid = Buffer.from(turin ? req.chipId.subarray(0, 8) : req.chipId).toString('hex');
  const t = req.tcb;
  const q = [
    ...(turin ? [`fmcSPL=${t.fmc ?? 0}`] : []),
    `blSPL=${t.bootloader}`,
    `teeSPL=${t.tee}`,
    `snpSPL=${t.snp}`,
    `ucodeSPL=${t.microcode}`,
  ].join('&');
  return `/vcek/v1/${req.product}/${hwid}?${q}`;
}

export function chainPath(product: ProductLine, kind: KeyKind): string {
  return `/${kind}/v1/${product}/cert_chain`;
}

export function crlPath(product: ProductLine, kind: KeyKind): string {
  return `/${kind}/v1/${product}/crl`;
}

/** Where certificates come from when the evidence and options do not carry them. */
export interface SnpCollateralProvider {
  /** DER VCEK for this chip and reported TCB, or undefined when unknown. */
  vcek(req: VcekRequest): Promise<Uint8Array | undefined>;
  /** PEM ASK/ASVK + ARK as KDS serves it. */
  chain(product: ProductLine, kind: KeyKind): Promise<Uint8Array | undefined>;
  /** DER CRL signed by the ARK. */
  crl(product: ProductLine, kind: KeyKind): Promise<Uint8Array | undefined>;
}

/** A store of KDS responses keyed by URL path (with query). */
export interface KdsCache {
  get(path: string): Promise<Uint8Array | undefined>;
  put(path: string, body: Uint8Array): Promise<void>;
}

export class MemoryKdsCache implements KdsCache {
  private readonly m = new Map<string, Uint8Array>();
  async get(path: string) {
    return this.m.get(path);
  }
  async put(path: string, body: Uint8Array) {
    this.m.set(path, body);
  }
}

export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<{
  status: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

export interface KdsProviderOptions {
  /** Default https://kdsintf.amd.com. */
  baseUrl?: string;
  /** HTTP client (default globalThis.fetch); `false` = cache only, never touch the network. */
  fetch?: FetchLike | false;
  /** Default: an in-memory cache owned by this provider. */
  cache?: KdsCache;
  timeoutMs?: number;
}

/**
 * KDS-backed provider: cache first, then HTTP (responses are cached, so one fetch per chip/TCB/product). With
 * `fetch: false` and a directory cache it is the offline "KDS-shaped cache" provider.
 */
export class KdsProvider implements SnpCollateralProvider {
  private readonly base: string;
  private readonly cache: KdsCache;
  private readonly fetchFn: FetchLike | false;
  constructor(private readonly opts: KdsProviderOptions = {}) {
    this.base = (opts.baseUrl ?? KDS_BASE_URL).replace(/\/+$/, '');
    this.cache = opts.cache ?? new MemoryKdsCache();
    this.fetchFn = opts.fetch === undefined ? (globalThis.fetch as unknown as FetchLike) : opts.fetch;
  }

  vcek(req: VcekRequest) {
    return this.get(vcekPath(req));
  }
  chain(product: ProductLine, kind: KeyKind) {
    return this.get(chainPath(product, kind));
  }
  crl(product: ProductLine, kind: KeyKind) {
    return this.get(crlPath(product, kind));
  }

  private async get(path: string): Promise<Uint8Array | undefined> {
    const hit = await this.cache.get(path);
    if (hit) return hit;
    if (!this.fetchFn) return undefined;
    const url = `${this.base}${path}`;
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
    } catch (e) {
      throw new CollateralError('KDS_FETCH_FAILED', `AMD KDS request ${url} failed: ${(e as Error).message}`);
    }
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new CollateralError('KDS_FETCH_FAILED', `AMD KDS request ${url} returned HTTP ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    await this.cache.put(path, body);
    return body;
  }
}
