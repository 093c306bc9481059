import { CollateralError } from '../common/errors.js';
import type { DcapCollateral, DcapCollateralProvider, DcapCollateralRequest, PckCaType, SignedJson } from './collateral.js';
import { parseCrlDer, pemBlocks } from './pki.js';
import { rawMemberText } from './raw-json.js';

/**
 * Intel Provisioning Certification Service (PCS) API v4, or a PCCS speaking the same paths:
 *   GET /{sgx|tdx}/certification/v4/tcb?fmspc=F      → {"tcbInfo": {...}, "signature": hex}   header TCB-Info-Issuer-Chain
 *   GET /{sgx|tdx}/certification/v4/qe/identity       → {"enclaveIdentity": {...}, "signature"} header SGX-Enclave-Identity-Issuer-Chain
 *   GET /sgx/certification/v4/pckcrl?ca=C&encoding=der → DER CRL                              header SGX-PCK-CRL-Issuer-Chain
 * Issuer chains are URL-encoded PEM in those headers. PCS has no Root CA CRL endpoint: Intel publishes it at the
 * root certificate's CRL distribution point; a PCCS serves it at /sgx/certification/v4/rootcacrl (hex DER).
 */
export const INTEL_PCS_BASE_URL = 'https://api.trustedservices.intel.com';
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

export type PcsItemRef =
  | { kind: 'tcb'; tee: 'sgx' | 'tdx'; fmspc: string }
  | { kind: 'qe'; tee: 'sgx' | 'tdx' }
  | { kind: 'pckcrl'; ca: PckCaType }
  | { kind: 'rootcacrl' };

/** One PCS response as it came over the wire: the body and the issuer chain header (already URL-decoded PEM). */
export interface PcsResponse {
  body: Uint8Array;
  issuerChain?: string;
}

/** What one PCS response contributes to a DcapCollateral, plus its own next-update time. */
export interface PcsItem {
  ref: PcsItemRef;
  signed?: SignedJson;
  crl?: Uint8Array;
  certs: Uint8Array[];
  nextUpdate?: Date;
}

export type PcsFetch = (
  url: string,
  init?: { signal?: AbortSignal },
) => Promise<{ status: number; headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface PcsClientOptions {
  /** Default https://api.trustedservices.intel.com (or a PCCS base URL). */
  baseUrl?: string;
  /** Default: Intel's CRL distribution point for the PCS base URL, `${baseUrl}/sgx/certification/v4/rootcacrl` otherwise. */
  rootCaCrlUrl?: string;
  /** HTTP client (default globalThis.fetch). */
  fetch?: PcsFetch;
  timeoutMs?: number;
}

const CHAIN_HEADERS: Record<PcsItemRef['kind'], string[]> = {
  tcb: ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'],
  qe: ['SGX-Enclave-Identity-Issuer-Chain'],
  pckcrl: ['SGX-PCK-CRL-Issuer-Chain'],
  rootcacrl: [],
};

const FMSPC = /^[0-9A-F]{12}$/;

export function pcsItemName(ref: PcsItemRef): string {
  switch (ref.kind) {
    case 'tcb':
      return `${ref.tee.toUpperCase()} TCB info for FMSPC ${ref.fmspc}`;
    case 'qe':
      return `${ref.tee === 'sgx' ? 'QE' : 'TD_QE'} identity`;
    case 'pckcrl':
      return `${ref.ca} PCK CRL`;
    case 'rootcacrl':
      return 'Root CA CRL';
  }
}

/** Stable cache key of an item, e.g. `pcs/sgx/tcb/00A067110000`, `pcs/pckcrl/processor`. */
export function pcsItemKey(ref: PcsItemRef): string {
  switch (ref.kind) {
    case 'tcb':
      return `pcs/${ref.tee}/tcb/${ref.fmspc}`;
    case 'qe':
      return `pcs/${ref.tee}/qe-identity`;
    case 'pckcrl':
      return `pcs/pckcrl/${ref.ca}`;
    case 'rootcacrl':
      return 'pcs/rootcacrl';
  }
}

/** The four items one quote needs. */
export function pcsItemsFor(req: DcapCollateralRequest): PcsItemRef[] {
  const fmspc = req.fmspc.toUpperCase();
  if (!FMSPC.test(fmspc)) throw new CollateralError('COLLATERAL_MISSING', `FMSPC '${req.fmspc}' is not 12 hex digits`);
  return [{ kind: 'tcb', tee: req.tee, fmspc }, { kind: 'qe', tee: req.tee }, { kind: 'pckcrl', ca: req.caType }, { kind: 'rootcacrl' }];
}

const invalid = (ref: PcsItemRef, msg: string) => new CollateralError('COLLATERAL_INVALID', `PCS ${pcsItemName(ref)}: ${msg}`);

/**
 * Turns a PCS response into collateral pieces. Shape only: every signature, chain and window is checked by the
 * verifier, never here.
 */
export function decodePcsResponse(ref: PcsItemRef, r: PcsResponse): PcsItem {
  const certs = r.issuerChain ? pemBlocks(r.issuerChain).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der) : [];
  if (ref.kind === 'tcb' || ref.kind === 'qe') {
    if (certs.length === 0) throw invalid(ref, `the ${CHAIN_HEADERS[ref.kind][0]} header carries no certificate`);
    const text = Buffer.from(r.body).toString('utf8');
    const member = ref.kind === 'tcb' ? 'tcbInfo' : 'enclaveIdentity';
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw invalid(ref, 'the body is not JSON');
    }
    const raw = rawMemberText(text, member);
    if (raw === undefined || typeof j[member] !== 'object') throw invalid(ref, `the body has no '${member}' object`);
    if (typeof j.signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(j.signature)) throw invalid(ref, 'the signature is not 64 bytes of hex');
    const inner = j[member] as Record<string, unknown>;
    const next = typeof inner.nextUpdate === 'string' ? new Date(inner.nextUpdate) : undefined;
    return {
      ref,
      signed: { body: new Uint8Array(Buffer.from(raw, 'utf8')), signature: new Uint8Array(Buffer.from(j.signature, 'hex')) },
      certs,
      nextUpdate: next && !Number.isNaN(next.getTime()) ? next : undefined,
    };
  }
  if (ref.kind === 'pckcrl' && certs.length === 0) throw invalid(ref, `the ${CHAIN_HEADERS.pckcrl[0]} header carries no certificate`);
  // DER as asked (encoding=der); PCCS answers hex of the DER, and PEM is accepted too.
  const text = Buffer.from(r.body.subarray(0, 64)).toString('latin1');
  let der = r.body;
  if (text.includes('-----BEGIN')) {
    const b = pemBlocks(Buffer.from(r.body).toString('latin1')).filter((x) => x.label === 'X509 CRL');
    if (b.length !== 1) throw invalid(ref, 'the PEM body is not one X509 CRL');
    der = b[0].der;
  } else if (/^[0-9a-fA-F]+$/.test(Buffer.from(r.body).toString('latin1').trim())) {
    der = new Uint8Array(Buffer.from(Buffer.from(r.body).toString('latin1').trim(), 'hex'));
  }
  let nextUpdate: Date | undefined;
  try {
    nextUpdate = parseCrlDer(der).nextUpdate;
  } catch (e) {
    throw invalid(ref, `the body is not a CRL (${(e as Error).message})`);
  }
  return { ref, crl: der, certs, nextUpdate };
}

/** Assembles the four items of one quote into the verifier's collateral shape. */
export function assembleCollateral(items: PcsItem[]): DcapCollateral {
  const tcb = items.find((i) => i.ref.kind === 'tcb')?.signed;
  const qe = items.find((i) => i.ref.kind === 'qe')?.signed;
  if (!tcb || !qe) throw new CollateralError('COLLATERAL_MISSING', 'PCS collateral lacks the TCB info or the QE identity');
  const seen = new Set<string>();
  const certs: Uint8Array[] = [];
  for (const c of items.flatMap((i) => i.certs)) {
    const k = Buffer.from(c).toString('base64');
    if (!seen.has(k)) (seen.add(k), certs.push(c));
  }
  return { tcbInfo: tcb, qeIdentity: qe, certs, crls: items.flatMap((i) => (i.crl ? [i.crl] : [])) };
}

/** Fetches PCS items over HTTP. No caching here: the caller (e.g. the attestation service's store cache) owns it. */
export class PcsClient {
  readonly baseUrl: string;
  readonly rootCaCrlUrl: string;
  private readonly fetchFn: PcsFetch;
  constructor(private readonly o: PcsClientOptions = {}) {
    this.baseUrl = (o.baseUrl ?? INTEL_PCS_BASE_URL).replace(/\/+$/, '');
    this.rootCaCrlUrl = o.rootCaCrlUrl ?? (this.baseUrl === INTEL_PCS_BASE_URL ? INTEL_ROOT_CA_CRL_URL : `${this.baseUrl}/sgx/certification/v4/rootcacrl`);
    this.fetchFn = o.fetch ?? (globalThis.fetch as unknown as PcsFetch);
  }

  url(ref: PcsItemRef): string {
    switch (ref.kind) {
      case 'tcb':
        return `${this.baseUrl}/${ref.tee}/certification/v4/tcb?fmspc=${ref.fmspc}`;
      case 'qe':
        return `${this.baseUrl}/${ref.tee}/certification/v4/qe/identity`;
      case 'pckcrl':
        return `${this.baseUrl}/sgx/certification/v4/pckcrl?ca=${ref.ca}&encoding=der`;
      case 'rootcacrl':
        return this.rootCaCrlUrl;
    }
  }

  /** One raw response; HTTP errors and network failures are `PCS_FETCH_FAILED`, 404 is `COLLATERAL_MISSING`. */
  async fetch(ref: PcsItemRef): Promise<PcsResponse> {
    const url = this.url(ref);
    let res: Awaited<ReturnType<PcsFetch>>;
    try {
      res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000) });
    } catch (e) {
      throw new CollateralError('PCS_FETCH_FAILED', `Intel PCS request ${url} failed: ${(e as Error).message}`);
    }
    if (res.status === 404) throw new CollateralError('COLLATERAL_MISSING', `Intel PCS has no ${pcsItemName(ref)} (${url}: HTTP 404)`);
    if (res.status !== 200) throw new CollateralError('PCS_FETCH_FAILED', `Intel PCS request ${url} returned HTTP ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    let issuerChain: string | undefined;
    for (const h of CHAIN_HEADERS[ref.kind]) {
      const v = res.headers.get(h);
      if (v) {
        try {
          issuerChain = decodeURIComponent(v);
        } catch {
          throw invalid(ref, `the ${h} header is not URL-encoded PEM`);
        }
        break;
      }
    }
    return { body, ...(issuerChain ? { issuerChain } : {}) };
  }
}

/** `DcapCollateralProvider` straight from PCS: four requests per quote (wrap it in a cache for any real load). */
export class PcsCollateralProvider implements DcapCollateralProvider {
  readonly client: PcsClient;
  constructor(o: PcsClientOptions | PcsClient = {}) {
    this.client = o instanceof PcsClient ? o : new PcsClient(o);
  }
  async getCollateral(req: DcapCollateralRequest): Promise<DcapCollateral> {
    const refs = pcsItemsFor(req);
    const items = await Promise.all(refs.map(async (ref) => decodePcsResponse(ref, await this.client.fetch(ref))));
    return assembleCollateral(items);
  }
}
