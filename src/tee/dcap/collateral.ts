import { readdir, stat } from 'node:fs/promises';
import { MAX_COLLATERAL_FILE_BYTES, MAX_COLLATERAL_FILES, readFileCapped } from '../common/read-capped.js';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { crlParts } from '../common/der.js';
import { CollateralError, UsageError } from '../common/errors.js';
import { pemBlocks } from './pki.js';
import { rawMemberText } from './raw-json.js';

/** A signed PCS JSON item: the exact bytes of the `tcbInfo`/`enclaveIdentity` value and its 64-byte r‖s signature. */
export interface SignedJson {
  body: Uint8Array;
  signature: Uint8Array;
}

/** What one quote verification needs besides the quote. Certificates and CRLs are DER; roles are found by content. */
export interface DcapCollateral {
  tcbInfo: SignedJson;
  qeIdentity: SignedJson;
  /** Issuer chains (TCB signing cert, PCK platform/processor CA, root). */
  certs: Uint8Array[];
  /** Root CA CRL and PCK CRL. */
  crls: Uint8Array[];
}

export type PckCaType = 'platform' | 'processor';

export interface DcapCollateralRequest {
  tee: 'sgx' | 'tdx';
  /** 12 upper-case hex digits. */
  fmspc: string;
  caType: PckCaType;
}

/** Where collateral comes from: an offline bundle here; a store-backed cache or an Intel PCS fetcher later. */
export interface DcapCollateralProvider {
  getCollateral(req: DcapCollateralRequest): Promise<DcapCollateral>;
}

/** `opts.dcap`: either a fixed collateral set or a provider asked per quote. */
export interface DcapOptions {
  collateral?: DcapCollateral;
  provider?: DcapCollateralProvider;
}

function missing(msg: string): CollateralError {
  return new CollateralError('COLLATERAL_MISSING', msg);
}
function invalid(msg: string): CollateralError {
  return new CollateralError('COLLATERAL_INVALID', msg);
}

interface Indexed {
  item: SignedJson;
  id: string;
  fmspc?: string;
  evalNumber: number;
}

function index(item: SignedJson, kind: 'TCB info' | 'QE identity', where: string): Indexed {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(Buffer.from(item.body).toString('utf8'));
  } catch {
    throw invalid(`${kind} in ${where} is not JSON`);
  }
  const version = j.version;
  const id = typeof j.id === 'string' ? j.id : kind === 'TCB info' && version === 2 ? 'SGX' : '';
  return {
    item,
    id,
    fmspc: typeof j.fmspc === 'string' ? j.fmspc.toUpperCase() : undefined,
    evalNumber: typeof j.tcbEvaluationDataNumber === 'number' ? j.tcbEvaluationDataNumber : -1,
  };
}

/**
 * An offline collateral bundle (a QuoteCollateralV3 JSON file or a directory of PCS items). Holds any number of
 * TCB infos / QE identities and picks the one a quote needs (newest tcbEvaluationDataNumber wins).
 */
export class BundleCollateralProvider implements DcapCollateralProvider {
  private readonly tcbInfos: Indexed[];
  private readonly qeIdentities: Indexed[];
  constructor(
    bundle: { tcbInfos: SignedJson[]; qeIdentities: SignedJson[]; certs: Uint8Array[]; crls: Uint8Array[] },
    private readonly where = 'the collateral bundle',
  ) {
    this.tcbInfos = bundle.tcbInfos.map((t) => index(t, 'TCB info', where));
    this.qeIdentities = bundle.qeIdentities.map((q) => index(q, 'QE identity', where));
    this.certs = bundle.certs;
    this.crls = bundle.crls;
  }
  readonly certs: Uint8Array[];
  readonly crls: Uint8Array[];

  async getCollateral(req: DcapCollateralRequest): Promise<DcapCollateral> {
    // The indexed lists never change after construction: the set picked for a (tee, FMSPC) stays the right one.
    const key = `${req.tee}:${req.fmspc}`;
    const handed = this.handedOut.get(key);
    if (handed) return handed;
    const teeId = req.tee === 'sgx' ? 'SGX' : 'TDX';
    const pick = (xs: Indexed[]) => xs.reduce<Indexed | undefined>((best, x) => (!best || x.evalNumber > best.evalNumber ? x : best), undefined)?.item;
    const tcbInfo = pick(this.tcbInfos.filter((t) => t.id === teeId && t.fmspc === req.fmspc));
    if (!tcbInfo) {
      const have = this.tcbInfos.map((t) => `${t.id} ${t.fmspc}`).join(', ') || 'none';
      throw missing(`${this.where} has no ${teeId} TCB info for FMSPC ${req.fmspc} (has: ${have})`);
    }
    const qeId = req.tee === 'sgx' ? 'QE' : 'TD_QE';
    const qeIdentity = pick(this.qeIdentities.filter((q) => q.id === qeId));
    if (!qeIdentity) throw missing(`${this.where} has no ${qeId} identity (needed for a ${teeId} quote)`);
    // Frozen and reused per (tee, FMSPC): the bytes are private to this provider, so the verifier may hash a
    // frozen set once instead of on every quote.
    const c: DcapCollateral = Object.freeze({ tcbInfo, qeIdentity, certs: Object.freeze([...this.certs]) as Uint8Array[], crls: Object.freeze([...this.crls]) as Uint8Array[] });
    this.handedOut.set(key, c);
    return c;
  }
  private readonly handedOut = new Map<string, DcapCollateral>();
}

function hexOrPemDer(v: unknown, field: string, label: 'X509 CRL' | 'CERTIFICATE'): Uint8Array {
  if (typeof v !== 'string') throw invalid(`collateral field ${field} is not a string`);
  if (v.includes('-----BEGIN')) {
    const b = pemBlocks(v).filter((x) => x.label === label);
    if (b.length !== 1) throw invalid(`collateral field ${field} is not one PEM ${label}`);
    return b[0].der;
  }
  if (!/^([0-9a-fA-F]{2})+$/.test(v.trim())) throw invalid(`collateral field ${field} is neither hex DER nor PEM`);
  return new Uint8Array(Buffer.from(v.trim(), 'hex'));
}

function certsFromPem(v: unknown, field: string): Uint8Array[] {
  if (typeof v !== 'string') throw invalid(`collateral field ${field} is not a PEM string`);
  const certs = pemBlocks(v).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  if (certs.length === 0) throw invalid(`collateral field ${field} holds no PEM certificate`);
  return certs;
}

function sigHex(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{128}$/.test(v)) throw invalid(`collateral field ${field} is not a 64-byte hex signature`);
  return new Uint8Array(Buffer.from(v, 'hex'));
}

const V3_KEYS = [
  'pck_crl_issuer_chain',
  'root_ca_crl',
  'pck_crl',
  'tcb_info_issuer_chain',
  'tcb_info',
  'tcb_info_signature',
  'qe_identity_issuer_chain',
  'qe_identity',
  'qe_identity_signature',
] as const;

/** dcap-qvl's QuoteCollateralV3 JSON (CRLs hex DER, chains PEM, tcb_info/qe_identity as the signed JSON text). */
export function parseQuoteCollateralV3(j: Record<string, unknown>, where = 'collateral JSON'): DcapCollateral {
  const absent = V3_KEYS.filter((k) => j[k] === undefined || j[k] === null);
  if (absent.length > 0) throw missing(`${where} lacks ${absent.join(', ')}`);
  const body = (k: string) => {
    if (typeof j[k] !== 'string') throw invalid(`collateral field ${k} is not a JSON string`);
    return new Uint8Array(Buffer.from(j[k] as string, 'utf8'));
  };
  return {
    tcbInfo: { body: body('tcb_info'), signature: sigHex(j.tcb_info_signature, 'tcb_info_signature') },
    qeIdentity: { body: body('qe_identity'), signature: sigHex(j.qe_identity_signature, 'qe_identity_signature') },
    certs: [
      ...certsFromPem(j.pck_crl_issuer_chain, 'pck_crl_issuer_chain'),
      ...certsFromPem(j.tcb_info_issuer_chain, 'tcb_info_issuer_chain'),
      ...certsFromPem(j.qe_identity_issuer_chain, 'qe_identity_issuer_chain'),
    ],
    crls: [hexOrPemDer(j.root_ca_crl, 'root_ca_crl', 'X509 CRL'), hexOrPemDer(j.pck_crl, 'pck_crl', 'X509 CRL')],
  };
}

interface Pool {
  tcbInfos: SignedJson[];
  qeIdentities: SignedJson[];
  certs: Uint8Array[];
  crls: Uint8Array[];
}

function isCert(der: Uint8Array): boolean {
  try {
    new X509Certificate(der);
    return true;
  } catch {
    return false;
  }
}
function isCrl(der: Uint8Array): boolean {
  try {
    crlParts(der);
    return true;
  } catch {
    return false;
  }
}

/** Classifies one file of a PCS directory by content; returns false when nothing in it is recognised. */
function classify(bytes: Uint8Array, name: string, pool: Pool): void {
  const text = Buffer.from(bytes).toString('utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(trimmed);
    } catch {
      throw invalid(`collateral file ${name} looks like JSON but does not parse`);
    }
    if (j.tcbInfo !== undefined || j.enclaveIdentity !== undefined) {
      const key = j.tcbInfo !== undefined ? 'tcbInfo' : 'enclaveIdentity';
      const raw = rawMemberText(trimmed, key);
      if (raw === undefined) throw invalid(`collateral file ${name}: cannot locate the ${key} member`);
      const item = { body: new Uint8Array(Buffer.from(raw, 'utf8')), signature: sigHex(j.signature, `${name} signature`) };
      (key === 'tcbInfo' ? pool.tcbInfos : pool.qeIdentities).push(item);
      return;
    }
    if (j.tcb_info !== undefined) {
      const c = parseQuoteCollateralV3(j, `collateral file ${name}`);
      pool.tcbInfos.push(c.tcbInfo);
      pool.qeIdentities.push(c.qeIdentity);
      pool.certs.push(...c.certs);
      pool.crls.push(...c.crls);
      return;
    }
    throw invalid(`collateral file ${name} is JSON but neither a TCB info, a QE identity nor a collateral bundle`);
  }
  if (trimmed.includes('-----BEGIN')) {
    const blocks = pemBlocks(text);
    let n = 0;
    for (const b of blocks) {
      if (b.label === 'CERTIFICATE') (pool.certs.push(b.der), n++);
      else if (b.label === 'X509 CRL') (pool.crls.push(b.der), n++);
    }
    if (n === 0) throw invalid(`collateral file ${name} holds no PEM certificate or CRL`);
    return;
  }
  // PCCS serves the root CA CRL as hex text of the DER.
  const der = /^([0-9a-fA-F]{2})+$/.test(trimmed) ? new Uint8Array(Buffer.from(trimmed, 'hex')) : bytes;
  if (isCert(der)) return void pool.certs.push(der);
  if (isCrl(der)) return void pool.crls.push(der);
  throw invalid(`collateral file ${name} is not a TCB info, QE identity, certificate or CRL (DER/PEM)`);
}

async function listFiles(dir: string, depth = 0): Promise<string[]> {
  const out: string[] = [];
  // Code-unit order: deterministic like localeCompare, without loading ICU's collator (~10 ms, a cold CLI's first call).
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < 2) out.push(...(await listFiles(p, depth + 1)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Builds the provider for `--collateral PATH`: a QuoteCollateralV3 JSON file, or a directory of PCS items. */
export async function openDcapCollateral(path: string): Promise<BundleCollateralProvider> {
  const pool: Pool = { tcbInfos: [], qeIdentities: [], certs: [], crls: [] };
  const st = await stat(path);
  const files = st.isDirectory() ? await listFiles(path) : [path];
  if (files.length > MAX_COLLATERAL_FILES) throw new UsageError('INPUT_TOO_LARGE', `collateral directory '${path}' holds more than ${MAX_COLLATERAL_FILES} files`);
  for (const f of files) classify(await readFileCapped(f, MAX_COLLATERAL_FILE_BYTES, 'collateral file'), f, pool);
  const absent: string[] = [];
  if (pool.tcbInfos.length === 0) absent.push('TCB info JSON');
  if (pool.qeIdentities.length === 0) absent.push('QE identity JSON');
  if (pool.crls.length === 0) absent.push('Root CA CRL and PCK CRL');
  if (pool.certs.length === 0) absent.push('issuer certificates (TCB signing chain, PCK CA chain)');
  if (absent.length > 0) throw missing(`collateral at ${path} is missing: ${absent.join('; ')}`);
  return new BundleCollateralProvider(pool, `collateral at ${path}`);
}
