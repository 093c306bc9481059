import type { Claims } from '../common/claims.js';
import { CollateralError, EvidenceFormatError, UsageError, VerificationError } from '../common/errors.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { parseCertTable } from './abi/cert-table.js';
import { REPORT_SIZE, SIG_ALGO_ECDSA_P384_SHA384, parseReport, withLayout, type SnpReport } from './abi/report.js';
import { PRODUCT_LINES, type ProductLine } from './abi/product.js';
import { tcbComponents } from './abi/tcb.js';
import { parseCollateralBlob, parseVcekExtensions, sha256Hex, type CollateralItems, type SnpCert } from './certs/parse.js';
import { PINNED_ARKS, BUILTIN_INTERMEDIATES } from './certs/roots.js';
import { openSnpCollateral } from './collateral/open.js';
import { snpClaims } from './claims.js';
import { snpOptions, type SnpOptions } from './options.js';
import { checkChipBinding, checkTcbBinding } from './verify/binding.js';
import { ChainCache, verifyChain } from './verify/chain.js';
import { parseCrl, type ParsedCrl } from './verify/crl.js';
import { verifyReportSignature, verifyReportSignatureWith } from './verify/signature.js';

/** Parsed collateral blobs by content hash, so warm verifications do no ASN.1 work. */
class BlobCache {
  private readonly items_ = new Map<string, CollateralItems>();
  private readonly crls = new Map<string, ParsedCrl>();
  constructor(private readonly max = 512) {}
  items(b: Uint8Array, where: string): CollateralItems {
    const k = sha256Hex(b);
    let v = this.items_.get(k);
    if (!v) {
      v = { certs: [], crls: [] };
      parseCollateralBlob(b, where, v);
      if (this.items_.size >= this.max) this.items_.delete(this.items_.keys().next().value as string);
      this.items_.set(k, v);
    }
    return v;
  }
  crl(b: Uint8Array): ParsedCrl {
    const k = sha256Hex(b);
    let v = this.crls.get(k);
    if (!v) {
      v = parseCrl(b);
      if (this.crls.size >= this.max) this.crls.delete(this.crls.keys().next().value as string);
      this.crls.set(k, v);
    }
    return v;
  }
}

/**
 * AMD's pinned ARKs and the built-in ASK/ASVK intermediates: constants, parsed on first use and shared by every
 * verifier of the process (re-parsing them per registry was most of a fresh verifier's first report).
 */
let pinnedArks: SnpCert[] | undefined;
const builtinIntermediates = new Map<string, SnpCert[]>();

function parseBuiltin(pem: string, where: string): SnpCert[] {
  const items: CollateralItems = { certs: [], crls: [] };
  parseCollateralBlob(Buffer.from(pem), where, items);
  return items.certs;
}

function pinnedArkCerts(): SnpCert[] {
  return (pinnedArks ??= Object.values(PINNED_ARKS).flatMap((p) => parseBuiltin(p, 'pinned AMD root')).filter((c) => c.role === 'ark'));
}

function builtinIntermediateCerts(product: ProductLine, signingKey: 'vcek' | 'vlek'): SnpCert[] {
  const k = `${product}:${signingKey}`;
  let v = builtinIntermediates.get(k);
  if (!v) {
    const b = BUILTIN_INTERMEDIATES[product];
    v = parseBuiltin(signingKey === 'vcek' ? b.ask : b.asvk, 'built-in AMD intermediate');
    builtinIntermediates.set(k, v);
  }
  return v;
}

/** `trustAnchors` arrives through the open VerifyOptions index signature: accept only a list of byte arrays. */
function trustAnchorsOf(opts: VerifyOptions): Uint8Array[] | undefined {
  const t = opts.trustAnchors;
  if (t === undefined) return undefined;
  if (!Array.isArray(t) || !t.every((x) => x instanceof Uint8Array)) {
    throw new CollateralError('TRUST_ANCHORS_INVALID', 'opts.trustAnchors must be a list of PEM/DER certificates (Uint8Array)');
  }
  return t;
}

/**
 * AMD SEV-SNP attestation report verifier. Owns its caches (parsed blobs, verified chains); reuse one instance to
 * keep them warm. Order: parse → product → collateral → chain (ARK → ASK/ASVK → VCEK/VLEK, CRL, windows) →
 * report signature → TCB and chip binding → claims.
 */
export class SnpVerifier implements TeeVerifier {
  readonly tee = 'snp' as const;
  private readonly chains = new ChainCache();
  private readonly blobs = new BlobCache();

  detect(input: EvidenceInput): boolean {
    const b = input.evidence;
    if (b.length !== REPORT_SIZE) return false;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const v = dv.getUint32(0, true);
    return v >= 2 && v <= 5 && dv.getUint32(0x34, true) === SIG_ALGO_ECDSA_P384_SHA384;
  }

  openCollateral(path: string): Promise<Record<string, unknown>> {
    return openSnpCollateral(path) as Promise<Record<string, unknown>>;
  }

  async verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    const so = snpOptions(opts.snp);
    const asyncVerify = opts.verifySignature;
    if (asyncVerify !== undefined && typeof asyncVerify !== 'function') throw new UsageError('BAD_OPTIONS', 'opts.verifySignature is not a function');
    // The trust core reads no clock: verifyEvidence() always supplies `at`.
    const at = opts.at;
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError('AT_REQUIRED', 'opts.at (the verification time) must be a valid Date');
    let rep = parseReport(input.evidence, { productLine: so.productLine });
    if (rep.signatureAlgo !== SIG_ALGO_ECDSA_P384_SHA384) {
      throw new EvidenceFormatError('UNSUPPORTED_SIGNATURE_ALGO', `report signature algorithm ${rep.signatureAlgo} is not ECDSA P-384/SHA-384 (1)`);
    }
    if (rep.signingKey === 'none' || rep.maskChipKey) {
      throw new VerificationError('REPORT_NOT_SIGNED', 'the report is not signed (signing key selector NONE or MASK_CHIP_KEY set), so it cannot be verified');
    }
    const signingKey = rep.signingKey;

    const col = this.collect(input, so);
    rep = this.resolveProduct(rep, so, col.certs) ?? (await this.probeProduct(rep, so, col));
    const product = rep.product!;

    // Fill gaps from the provider (KDS over HTTP or a KDS-shaped cache); collateral already given wins.
    if (so.provider) {
      if (!col.certs.some((c) => c.role === signingKey) && signingKey === 'vcek') {
        const der = await so.provider.vcek({ product, chipId: rep.chipId, tcb: rep.reportedTcb });
        if (der) this.addBlob(col, der, 'KDS VCEK');
      }
      const interRole = signingKey === 'vcek' ? 'ask' : 'asvk';
      if (!col.certs.some((c) => c.role === interRole && c.product === product)) {
        const pem = await so.provider.chain(product, signingKey);
        if (pem) this.addBlob(col, pem, `KDS ${signingKey} cert_chain`);
      }
      if (col.crls.length === 0) {
        const crl = await so.provider.crl(product, signingKey);
        if (crl) col.crls.push(this.blobs.crl(crl));
      }
    }

    const arks = this.anchors(opts);
    const intermediates = [...col.certs.filter((c) => c.role === 'ask' || c.role === 'asvk')];
    if (!trustAnchorsOf(opts)) intermediates.push(...builtinIntermediateCerts(product, signingKey));
    // Several leaves (a directory of VCEKs): try first the one certified for this chip and reported TCB.
    const leaves = col.certs.filter((c) => c.role === signingKey);
    if (leaves.length > 1) {
      const scored = new Map(leaves.map((c) => [c, this.leafScore(c, rep)]));
      leaves.sort((a, b) => scored.get(b)! - scored.get(a)!);
    }

    const ek = verifyChain(
      { product, signingKey, leaves, intermediates, arks, crls: col.crls, at, requireCrl: so.requireCrl },
      this.chains,
    );
    if (asyncVerify) await verifyReportSignatureWith(input.evidence, rep.signatureR, rep.signatureS, ek.leaf.publicKey, asyncVerify);
    else verifyReportSignature(input.evidence, rep.signatureR, rep.signatureS, ek.leaf.publicKey);
    checkTcbBinding(rep, ek.ext);
    checkChipBinding(rep, ek.ext, signingKey);

    const warnings: string[] = [];
    const cur = tcbComponents(rep.currentTcb);
    const com = tcbComponents(rep.committedTcb);
    if (cur.some(([, v], i) => com[i][1] !== v)) warnings.push('committed TCB differs from current TCB (provisional firmware)');
    const soon = ek.leaf.notAfter.getTime() - at.getTime();
    if (soon < 30 * 24 * 3600 * 1000) warnings.push(`${ek.leaf.cn} expires within 30 days (${ek.leaf.notAfter.toISOString()})`);
    return snpClaims(rep, warnings);
  }

  /** 2 = certifies this chip, +1 = certifies this reported TCB. Only an ordering hint: every check still runs. */
  private leafScore(c: SnpCert, rep: SnpReport): number {
    if (c.role === 'vlek' && rep.signingKey === 'vlek') return 0;
    try {
      const ext = parseVcekExtensions(c);
      const chip = !!ext.hwId && Buffer.from(rep.chipId.subarray(0, ext.hwId.length)).equals(Buffer.from(ext.hwId));
      let tcb = true;
      try {
        checkTcbBinding(rep, ext);
      } catch {
        tcb = false;
      }
      return (chip ? 2 : 0) + (tcb ? 1 : 0);
    } catch {
      return -1;
    }
  }

  private addBlob(col: { certs: SnpCert[]; crls: ParsedCrl[] }, b: Uint8Array, where: string): void {
    const items = this.blobs.items(b, where);
    col.certs.push(...items.certs);
    col.crls.push(...items.crls.map((d) => this.blobs.crl(d)));
  }

  private collect(input: EvidenceInput, so: SnpOptions): { certs: SnpCert[]; crls: ParsedCrl[] } {
    const col = { certs: [] as SnpCert[], crls: [] as ParsedCrl[] };
    (so.certs ?? []).forEach((b, i) => this.addBlob(col, b, `opts.snp.certs[${i}]`));
    (so.crls ?? []).forEach((b, i) => {
      const items = this.blobs.items(b, `opts.snp.crls[${i}]`);
      if (items.certs.length > 0) throw new CollateralError('CRL_INVALID', `opts.snp.crls[${i}] holds a certificate, not a CRL`);
      col.crls.push(...items.crls.map((d) => this.blobs.crl(d)));
    });
    const tables = [so.certTable, input.attachments?.certs].filter((t): t is Uint8Array => t !== undefined);
    for (const t of tables) {
      for (const e of parseCertTable(t)) {
        if (e.kind === 'crl') col.crls.push(this.blobs.crl(e.data));
        else if (e.kind !== 'other') this.addBlob(col, e.data, `certificate table entry ${e.kind.toUpperCase()}`);
      }
    }
    return col;
  }

  /** v3+: CPUID decides (a conflicting productLine option is an error); v2: the option, else the VCEK's productName. */
  private resolveProduct(rep: SnpReport, so: SnpOptions, certs: SnpCert[]): SnpReport | undefined {
    if (rep.cpuid) {
      if (!rep.product) {
        throw new VerificationError(
          'UNKNOWN_PRODUCT',
          `CPUID family 0x${rep.cpuid.family.toString(16)} model 0x${rep.cpuid.model.toString(16)} is not a supported product line (Milan, Genoa, Turin)`,
        );
      }
      if (so.productLine && so.productLine !== rep.product) {
        throw new VerificationError('PRODUCT_MISMATCH', `the report's CPUID says ${rep.product}, opts.snp.productLine says ${so.productLine}`);
      }
      return rep;
    }
    if (rep.product) return rep;
    const leaf = certs.find((c) => c.role === rep.signingKey);
    let product: ProductLine | undefined;
    if (leaf) {
      try {
        product = parseVcekExtensions(leaf).product;
      } catch {
        product = undefined;
      }
    }
    return product ? withLayout(rep, product) : undefined;
  }

  /**
   * A v2 report with no VCEK at hand and no productLine: ask the provider for this chip's VCEK under each product
   * line (each with its own TCB layout); the product that has one is the report's. Without a provider: rejected.
   */
  private async probeProduct(rep: SnpReport, so: SnpOptions, col: { certs: SnpCert[]; crls: ParsedCrl[] }): Promise<SnpReport> {
    if (so.provider && rep.signingKey === 'vcek') {
      for (const p of PRODUCT_LINES) {
        const candidate = withLayout(rep, p);
        const der = await so.provider.vcek({ product: p, chipId: rep.chipId, tcb: candidate.reportedTcb });
        if (der) {
          this.addBlob(col, der, `KDS VCEK (${p})`);
          return candidate;
        }
      }
    }
    throw new CollateralError(
      'CERTS_MISSING',
      'a version-2 report names no product: supply its VCEK/VLEK (collateral, certificate table or a provider that has it) or opts.snp.productLine',
    );
  }

  private anchors(opts: VerifyOptions): SnpCert[] {
    const given = trustAnchorsOf(opts);
    const parse = (list: Uint8Array[]) =>
      list.flatMap((b, i) => this.blobs.items(b, `trust anchor #${i + 1}`).certs).filter((c) => c.role === 'ark');
    if (given) return parse(given);
    return pinnedArkCerts();
  }
}
