import { createPublicKey, hash as oneShotHash, verify as ecVerify, type KeyObject } from 'node:crypto';
import { CollateralError, EvidenceFormatError, VerificationError } from '../common/errors.js';
import { INTEL_QE_VENDOR_ID, INTEL_SGX_ROOT_CA_PEM, TEE_TYPE_SGX } from './constants.js';
import { parseQuote, type DcapQuote } from './quote.js';
import { parseEnclaveReport, type EnclaveReport } from './enclave-report.js';
import { cnOf, parseCertDer, parseCrlDer, pemBlocks, sha256Hex, validAt, type ParsedCert, type ParsedCrl } from './pki.js';
import { BoundedMap, RecentByBytes } from './bounded-map.js';
import { verifyCrlSignature } from './crl-signature.js';
import { strictPemCertificates } from './cert-data.js';
import { certSki, checkChainProfile, crlAki, crlProblem, INTEL_CN, ProfileError, type ChainKind } from './cert-profile.js';
import { parsePckExtensions, PckExtensionError, type PckExtensions } from './pck-extensions.js';
import { parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo } from './collateral-json.js';
import { evaluateTcb, type TcbEvaluation, type TdxTcbInput } from './tcb-eval.js';
import type { DcapCollateral, DcapOptions, PckCaType, SignedJson } from './collateral.js';
import type { AsyncSignatureVerifier } from '../common/verifier.js';

export interface DcapVerifyOptions {
  at: Date;
  trustAnchors?: Uint8Array[];
  dcap?: DcapOptions;
  /** Verifies the two per-quote signatures off this thread (see AsyncSignatureVerifier); default: synchronously. */
  verifySignature?: AsyncSignatureVerifier;
}

export interface DcapVerified {
  quote: DcapQuote;
  qeReport: EnclaveReport;
  pck: PckExtensions;
  caType: PckCaType;
  tcb: TcbEvaluation;
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  warnings: string[];
}

interface PckInfo {
  /** Every certificate the quote carries, leaf first. */
  all: ParsedCert[];
  leaf: ParsedCert;
  pool: ParsedCert[];
  ext: PckExtensions;
  caType: PckCaType;
}

interface PreparedCollateral {
  certs: ParsedCert[];
  crls: ParsedCrl[];
  tcbInfoKey: string;
  qeIdentityKey: string;
}

interface SignedItem<T> {
  signer: ParsedCert;
  parsed: T;
}

const ATT_KEY_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const DAY = 86_400_000;
/**
 * Verified QE report signatures remembered per verifier: PCK leaves (platforms), and QE reports per leaf (a platform
 * has one attestation key at a time; a few cover its re-certifications within one batch).
 */
export const QE_SIG_MEMO = { leaves: 4096, perLeaf: 4 };

/** Certification data and attestation keys compared byte for byte before a keyed lookup (pck(), attKey()). */
const RECENT_PCKS = 8;

/** A QE report and its signature that verified (private copies). */
interface QeSigEntry {
  report: Uint8Array;
  signature: Uint8Array;
}

const fail = (code: string, msg: string) => new VerificationError(code, msg);
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
/** The bytes as a latin1 string (one char per byte): a Map key for exact byte content. */
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * The pinned Intel SGX Root CA, parsed on first use and shared by every verifier in the process: it is a constant,
 * and re-parsing it per registry was a large part of a new process's (or a fresh registry's) first verification.
 */
let intelRoots: ParsedCert[] | undefined;
function pinnedIntelRoots(): ParsedCert[] {
  return (intelRoots ??= pemBlocks(INTEL_SGX_ROOT_CA_PEM).map((b) => parseCertDer(b.der)));
}

/**
 * DCAP quote verification shared by the SGX and TDX verifiers. One instance owns its caches; everything cached is
 * input-independent or keyed by content hash (certificate/CRL/collateral signatures, parsed collateral, a PCK
 * chain's signature result, a QE report signature that verified under the same PCK leaf). Per quote it always runs:
 * the quote signature, the QE report signature unless that exact (leaf, report, signature) verified before, the QE
 * report data binding, every validity window against opts.at, revocation lookups of this chain's serials, and the
 * TCB evaluation.
 * Expiry model: like dcap-qvl (and unlike QvE, which only flags it), any window that does not hold at opts.at is a
 * rejection; callers verify old evidence "as of" a time inside its collateral's window.
 */
export class DcapQuoteVerifier {
  private readonly certs = new BoundedMap<string, ParsedCert>(4096);
  private readonly crls = new BoundedMap<string, ParsedCrl>(256);
  /** `${crlHash}:${issuerHash}` → profile error (thrown), signature result. */
  private readonly crlSigs = new BoundedMap<string, boolean | ProfileError>(1024);
  /** Chain arrays (as cached in `chains`) whose profile (roles, extensions, algorithms) has passed, per role. */
  private readonly profiled: Record<ChainKind, WeakSet<ParsedCert[]>> = { pck: new WeakSet(), tcb: new WeakSet() };
  /** `${leafHash}:${poolKey}:${anchorsKey}` → verified chain leaf..anchor. */
  private readonly chains = new BoundedMap<string, ParsedCert[]>(4096);
  /**
   * The same verified chains by object identity (pool array → anchor array → leaf), in front of `chains`: the
   * arrays come from this verifier's own caches and are never mutated, so the same objects mean the same content,
   * and the warm path skips building the hash-string key three times per quote.
   */
  private readonly chainRefs = new WeakMap<ParsedCert[], WeakMap<ParsedCert[], WeakMap<ParsedCert, ParsedCert[]>>>();
  private readonly pcks = new BoundedMap<string, PckInfo>(4096);
  /** The last RECENT_PCKS certification data seen and their parsed chains, in front of `pcks`. */
  private readonly recentPcks = new RecentByBytes<PckInfo>(RECENT_PCKS);
  /**
   * QE report signatures that verified, per PCK leaf (its content hash): private copies of the QE report and
   * signature bytes, compared byte for byte. Why this is sound: the QE report and its PCK signature are made once,
   * when the QE certifies its attestation key, and are the same bytes in every quote of that platform until the key
   * changes; ECDSA verification is a deterministic function of (public key, message, signature), and the leaf's
   * content hash fixes its key. So a hit on the exact triple is the answer a re-verify would give. Positive results
   * only (a failure is re-checked every time), bounded (leaves, and entries per leaf), per instance. The quote's own
   * signature (different in every quote) is never memoized.
   */
  private readonly qeSigs: BoundedMap<string, QeSigEntry[]>;
  private readonly qeSigsPerLeaf: number;
  private readonly attKeys = new BoundedMap<string, KeyObject>(4096);
  /** The last RECENT_PCKS attestation keys seen (raw points), in front of `attKeys`. */
  private readonly recentAttKeys = new RecentByBytes<KeyObject>(RECENT_PCKS);
  private readonly tcbInfos = new BoundedMap<string, SignedItem<TcbInfo>>(256);
  private readonly qeIds = new BoundedMap<string, SignedItem<QeIdentity>>(256);
  private readonly anchorSets = new BoundedMap<string, ParsedCert[]>(16);
  /** Anchor arrays seen, by identity, with a private copy of their bytes (see anchors()). */
  private readonly lastAnchors = new WeakMap<Uint8Array[], { bytes: Uint8Array[]; certs: ParsedCert[] }>();
  private readonly prepared = new WeakMap<DcapCollateral, PreparedCollateral>();
  /**
   * The collateral checks that passed (TCB info and QE identity signer chains: path, profile, windows, revocation;
   * their issue dates), per prepared collateral set (cached only for frozen sets, whose bytes never change), with
   * everything else they depend on: the anchors (cached array), the time, the signed items (cached objects). Failures
   * are not kept: they throw every time.
   */
  private readonly collChecked = new WeakMap<
    PreparedCollateral,
    { anchors: ParsedCert[]; atMs: number; tcbInfo: SignedItem<TcbInfo>; qeIdentity: SignedItem<QeIdentity>; warnings: string[] }
  >();
  /**
   * A platform's PCK chain checks that passed (shape, carried certificates, profile, windows, then revocation against
   * a collateral's CRLs), per parsed certification data (cached object), with what they depend on: the verified
   * chain (a cached array: same anchors), the time and the CRL array (cached per frozen collateral set). The
   * revocation warnings are replayed; failures are not kept.
   */
  private readonly pckChecked = new WeakMap<PckInfo, { chain: ParsedCert[]; atMs: number; crls: ParsedCrl[]; warnings: string[] }>();
  /** crlFor's choices: collateral CRL array (by identity) → issuer → CRL. */
  private readonly crlChoice = new WeakMap<ParsedCrl[], BoundedMap<ParsedCert, ParsedCrl>>();
  /** o.qeSignatureMemo: bounds of the QE report signature memo (default QE_SIG_MEMO; tests use a few). */
  constructor(o: { qeSignatureMemo?: { leaves: number; perLeaf: number } } = {}) {
    const m = o.qeSignatureMemo ?? QE_SIG_MEMO;
    this.qeSigs = new BoundedMap(Math.max(1, m.leaves));
    this.qeSigsPerLeaf = Math.max(1, m.perLeaf);
  }

  /** Intel's pinned root: parsed once per process, on first use (pinnedIntelRoots). */
  private get pinned(): ParsedCert[] {
    return pinnedIntelRoots();
  }

  async verify(bytes: Uint8Array, tee: 'sgx' | 'tdx', opts: DcapVerifyOptions, tdxOf?: (q: DcapQuote) => TdxTcbInput): Promise<DcapVerified> {
    const q = parseQuote(bytes);
    const isSgx = q.teeType === TEE_TYPE_SGX;
    if (isSgx !== (tee === 'sgx')) {
      throw new EvidenceFormatError('TEE_TYPE_MISMATCH', `the quote is ${isSgx ? 'SGX' : 'TDX'}, not ${tee.toUpperCase()}`);
    }
    if (Buffer.compare(q.qeVendorId, INTEL_QE_VENDOR_ID) !== 0) {
      throw fail('QE_VENDOR_MISMATCH', `QE vendor id ${Buffer.from(q.qeVendorId).toString('hex')} is not Intel's`);
    }
    const at = opts.at;
    const anchors = this.anchors(opts.trustAnchors);
    const pck = this.pck(q.certData);

    // The quote's signature and the binding: never cached. The quote's signature is judged first (its error wins).
    const attKey = { key: this.attKey(q.attestKey), dsaEncoding: 'ieee-p1363' } as const;
    const pckKey = { key: pck.leaf.key, dsaEncoding: 'ieee-p1363' } as const;
    // The QE report signature: remembered once verified under this exact PCK leaf (see qeSigs for why that is sound).
    const qeKnown = this.qeSigKnown(pck.leaf, q.qeReport, q.qeReportSignature);
    let quoteOk: boolean;
    let qeOk: boolean;
    if (opts.verifySignature) {
      // At once on the injected verifier; anything but `true` is a failure.
      const [a, b] = await Promise.all([
        opts.verifySignature('sha256', q.signedData, attKey, q.signature),
        qeKnown || opts.verifySignature('sha256', q.qeReport, pckKey, q.qeReportSignature),
      ]);
      quoteOk = a === true;
      qeOk = b === true;
    } else {
      quoteOk = ecVerify('sha256', q.signedData, attKey, q.signature);
      qeOk = quoteOk && (qeKnown || ecVerify('sha256', q.qeReport, pckKey, q.qeReportSignature));
    }
    if (qeOk && !qeKnown) this.rememberQeSig(pck.leaf, q.qeReport, q.qeReportSignature);
    if (!quoteOk) throw fail('QUOTE_SIGNATURE_INVALID', 'the quote signature does not verify with the attestation key');
    if (!qeOk) throw fail('QE_REPORT_SIGNATURE_INVALID', 'the QE report signature does not verify with the PCK certificate key');
    const qeReport = parseEnclaveReport(q.qeReport);
    // One-shot hash of the (small) concatenation: createHash's Hash object costs several times the hashing here.
    const binding = oneShotHash('sha256', Buffer.concat([q.attestKey, q.qeAuthData]), 'buffer') as unknown as Buffer;
    if (Buffer.compare(binding, qeReport.reportData.subarray(0, 32)) !== 0) {
      throw fail('QE_REPORT_DATA_MISMATCH', 'QE report data is not SHA-256(attestation key ‖ QE authentication data)');
    }

    const chain = this.chain(pck.leaf, pck.pool, anchors, 'PCK_CHAIN_INVALID', 'PCK certificate');
    // The same platform's chain checked at the same time before (see pckChecked): its shape and windows held.
    const pckDone = this.pckChecked.get(pck);
    const pckSeen = pckDone !== undefined && pckDone.chain === chain && pckDone.atMs === at.getTime();
    if (!pckSeen) {
      // PCK leaf → PCK Platform/Processor CA → root, as Intel issues them.
      if (chain.length !== 3) throw fail('PCK_CHAIN_INVALID', `the PCK certificate chain has ${chain.length} certificates, expected leaf, PCK CA and root`);
      // Every certificate the quote carries must be on the verified path (its root copy must be the anchor itself):
      // nothing in the certification data goes unchecked.
      for (const c of pck.all) {
        if (!chain.some((x) => x.hash === c.hash)) {
          throw fail('PCK_CHAIN_INVALID', `the quote carries certificate '${cnOf(c.subject)}' that is not on the path to the trust anchor`);
        }
      }
      this.profile(chain, 'pck');
      this.checkWindows(chain, at, 'PCK_CHAIN_INVALID');
    }

    const coll = await this.collateral(opts.dcap, { tee, fmspc: pck.ext.fmspc, caType: pck.caType });
    const prep = this.prepare(coll);
    const collCerts = prep.certs;
    const collCrls = prep.crls;
    const warnings: string[] = [];
    if (q.trailingNonZero) {
      warnings.push(`the quote has ${q.trailingBytes} bytes after its signature data that are not zero padding: they are signed by nothing and were ignored (as Intel's QVL does)`);
    }
    if (pckSeen && pckDone.crls === collCrls) {
      warnings.push(...pckDone.warnings);
    } else {
      const pckWarnings: string[] = [];
      this.checkRevocation(chain, collCrls, at, pckWarnings, 'PCK_REVOKED');
      this.pckChecked.set(pck, { chain, atMs: at.getTime(), crls: collCrls, warnings: pckWarnings });
      warnings.push(...pckWarnings);
    }

    const tcbInfo = this.signedJson(coll.tcbInfo, prep.tcbInfoKey, collCerts, 'TCB info', 'TCB_INFO_SIGNATURE_INVALID', this.tcbInfos, parseTcbInfo);
    const qeIdentity = this.signedJson(coll.qeIdentity, prep.qeIdentityKey, collCerts, 'QE identity', 'QE_IDENTITY_SIGNATURE_INVALID', this.qeIds, parseQeIdentity);
    // The collateral's own checks depend only on the collateral, the anchors and the time, which a batch repeats for
    // every quote: the last outcome that passed is kept per prepared set (see collChecked), and its warnings replayed.
    const done = this.collChecked.get(prep);
    if (done && done.anchors === anchors && done.atMs === at.getTime() && done.tcbInfo === tcbInfo && done.qeIdentity === qeIdentity) {
      warnings.push(...done.warnings);
    } else {
      const collWarnings: string[] = [];
      for (const [name, item] of [['TCB info', tcbInfo], ['QE identity', qeIdentity]] as const) {
        const ch = this.chain(item.signer, collCerts, anchors, 'TCB_SIGNING_CHAIN_INVALID', `${name} signing certificate`);
        // Intel's TCB Signing certificate is issued by the root itself; any longer path (e.g. a PCK key signing
        // collateral) is refused.
        if (ch.length !== 2) {
          throw fail('TCB_SIGNING_CHAIN_INVALID', `the ${name} signer '${cnOf(item.signer.subject)}' is not issued directly by the trust anchor`);
        }
        this.profile(ch, 'tcb');
        this.checkWindows(ch, at, 'TCB_SIGNING_CHAIN_INVALID');
        this.checkRevocation(ch, collCrls, at, collWarnings, 'TCB_SIGNING_CERT_REVOKED');
        this.checkIssued(item.parsed, name, at, collWarnings);
      }
      this.collChecked.set(prep, { anchors, atMs: at.getTime(), tcbInfo, qeIdentity, warnings: collWarnings });
      warnings.push(...collWarnings);
    }

    const tcb = evaluateTcb({
      tee,
      quoteVersion: q.version,
      tcbInfo: tcbInfo.parsed,
      qeIdentity: qeIdentity.parsed,
      pck: pck.ext,
      qeReport,
      tdx: tdxOf?.(q),
    });
    return { quote: q, qeReport, pck: pck.ext, caType: pck.caType, tcb, tcbInfo: tcbInfo.parsed, qeIdentity: qeIdentity.parsed, warnings };
  }

  private qeSigKnown(leaf: ParsedCert, report: Uint8Array, signature: Uint8Array): boolean {
    const seen = this.qeSigs.get(leaf.hash);
    if (!seen) return false;
    for (const e of seen) if (bytesEqual(e.signature, signature) && bytesEqual(e.report, report)) return true;
    return false;
  }

  private rememberQeSig(leaf: ParsedCert, report: Uint8Array, signature: Uint8Array): void {
    // Quotes verified at once (asynchronous signatures) all miss before the first answer: remember each triple once.
    if (this.qeSigKnown(leaf, report, signature)) return;
    let seen = this.qeSigs.get(leaf.hash);
    if (!seen) this.qeSigs.set(leaf.hash, (seen = []));
    if (seen.length >= this.qeSigsPerLeaf) seen.shift();
    // Copies: the quote's bytes belong to the caller, who may reuse or change them.
    seen.push({ report: Uint8Array.from(report), signature: Uint8Array.from(signature) });
  }

  /**
   * Not `async`: the provider's promise goes to the caller's await as it is (an async function returning a promise
   * adds two microtask hops per verification). A missing source still throws at the caller's await point.
   */
  private collateral(o: DcapOptions | undefined, req: { tee: 'sgx' | 'tdx'; fmspc: string; caType: PckCaType }): DcapCollateral | Promise<DcapCollateral> {
    if (o?.collateral) return o.collateral;
    if (o?.provider) return o.provider.getCollateral(req);
    throw new CollateralError(
      'COLLATERAL_MISSING',
      `no DCAP collateral was given (TCB info for ${req.tee.toUpperCase()} FMSPC ${req.fmspc}, QE identity, ${req.caType} PCK CRL, Root CA CRL): pass --collateral`,
    );
  }

  private cert(der: Uint8Array): ParsedCert {
    const h = sha256Hex(der);
    let c = this.certs.get(h);
    if (!c) {
      try {
        c = parseCertDer(der, h);
      } catch (e) {
        throw new CollateralError('CERT_INVALID', `a certificate does not parse: ${(e as Error).message}`);
      }
      this.certs.set(h, c);
    }
    return c;
  }

  private crl(der: Uint8Array): ParsedCrl {
    const h = sha256Hex(der);
    let c = this.crls.get(h);
    if (!c) {
      try {
        c = parseCrlDer(der, h);
      } catch (e) {
        throw new CollateralError('CRL_INVALID', `a CRL does not parse: ${(e as Error).message}`);
      }
      this.crls.set(h, c);
    }
    return c;
  }

  private anchors(given: Uint8Array[] | undefined): ParsedCert[] {
    if (!given || given.length === 0) return this.pinned;
    // A caller passing the same array again (the CLI, a service's fixed options): compare its bytes with a private
    // copy (memcmp) instead of hashing them; any change of content falls through to the content-keyed cache.
    const last = this.lastAnchors.get(given);
    if (last && last.bytes.length === given.length && last.bytes.every((b, i) => Buffer.compare(b, given[i]) === 0)) return last.certs;
    const certs = this.anchorsByContent(given);
    this.lastAnchors.set(given, { bytes: given.map((g) => Uint8Array.from(g)), certs });
    return certs;
  }

  private anchorsByContent(given: Uint8Array[]): ParsedCert[] {
    const key = sha256Hex(...given);
    let a = this.anchorSets.get(key);
    if (!a) {
      a = [];
      for (const g of given) {
        const text = Buffer.from(g).toString('latin1');
        const ders = text.includes('-----BEGIN') ? pemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der) : [g];
        for (const d of ders) a.push(this.cert(d));
      }
      if (a.length === 0) throw new CollateralError('TRUST_ANCHOR_INVALID', 'the trust anchors hold no certificate');
      this.anchorSets.set(key, a);
    }
    return a;
  }

  private attKey(raw: Uint8Array): KeyObject {
    // The last few attestation keys (a batch cycles over a few platforms), compared byte for byte: no key string.
    return this.recentAttKeys.get(raw, (r) => this.attKeyByContent(r));
  }

  private attKeyByContent(raw: Uint8Array): KeyObject {
    const h = latin1(raw); // a view: no copy
    let k = this.attKeys.get(h);
    if (!k) {
      try {
        k = createPublicKey({ key: Buffer.concat([ATT_KEY_SPKI_PREFIX, Buffer.from([4]), raw]), format: 'der', type: 'spki' });
      } catch {
        throw fail('QUOTE_SIGNATURE_INVALID', 'the attestation key is not a point on P-256');
      }
      this.attKeys.set(h, k);
    }
    return k;
  }

  /** Parses the type-5 PEM chain once per distinct content: leaf, the rest of the chain, SGX extensions, CA type. */
  private pck(certData: Uint8Array): PckInfo {
    // The last few chains seen, compared byte for byte (a batch cycles over a few platforms): no hash per quote.
    return this.recentPcks.get(certData, (c) => this.pckByContent(c));
  }

  private pckByContent(certData: Uint8Array): PckInfo {
    const h = sha256Hex(certData);
    const hit = this.pcks.get(h);
    if (hit) return hit;
    const blocks = strictPemCertificates(certData);
    let certs: ParsedCert[];
    try {
      certs = blocks.map((b) => this.cert(b.der));
    } catch (e) {
      throw fail('PCK_CHAIN_INVALID', `a certificate of the quote's PCK chain does not parse: ${(e as Error).message}`);
    }
    const leaf = certs[0];
    let ext: PckExtensions;
    try {
      ext = parsePckExtensions(leaf);
    } catch (e) {
      // Any parse failure of the leaf's extensions (der.ts reads them on first use) is a rejection.
      const why = e instanceof PckExtensionError ? e.message : `does not decode (${(e as Error).message})`;
      throw fail('PCK_EXTENSION_INVALID', `PCK certificate SGX extension: ${why}`);
    }
    const issuerCn = cnOf(leaf.issuer);
    const caType: PckCaType = /platform/i.test(issuerCn) ? 'platform' : 'processor';
    const info = { leaf, pool: certs.slice(1), ext, caType, all: certs };
    this.pcks.set(h, info);
    return info;
  }

  /** leaf → … → anchor, signatures checked once per (leaf, pool, anchors) content; windows and CRLs are not here. */
  private chain(leaf: ParsedCert, pool: ParsedCert[], anchors: ParsedCert[], code: string, what: string): ParsedCert[] {
    let byAnchors = this.chainRefs.get(pool);
    if (!byAnchors) this.chainRefs.set(pool, (byAnchors = new WeakMap()));
    let byLeaf = byAnchors.get(anchors);
    if (!byLeaf) byAnchors.set(anchors, (byLeaf = new WeakMap()));
    const known = byLeaf.get(leaf);
    if (known) return known;
    const found = this.chainByContent(leaf, pool, anchors, code, what);
    byLeaf.set(leaf, found);
    return found;
  }

  private chainByContent(leaf: ParsedCert, pool: ParsedCert[], anchors: ParsedCert[], code: string, what: string): ParsedCert[] {
    const key = `${leaf.hash}:${pool.map((c) => c.hash).join(',')}:${anchors.map((c) => c.hash).join(',')}`;
    const hit = this.chains.get(key);
    if (hit) return hit;
    const out = [leaf];
    let cur = leaf;
    for (let depth = 0; depth < 6; depth++) {
      if (anchors.some((a) => a.hash === cur.hash)) {
        this.chains.set(key, out);
        return out;
      }
      const anchor = anchors.find((a) => a.subjectKey === cur.issuerKey && cur.x509.verify(a.key));
      if (anchor) {
        out.push(anchor);
        this.chains.set(key, out);
        return out;
      }
      // No CA-flag filter here: the profile check rejects a non-CA issuer with its own code (CERT_BASIC_CONSTRAINTS_INVALID).
      const next = pool.find((c) => c.hash !== cur.hash && c.subjectKey === cur.issuerKey && cur.x509.verify(c.key));
      if (!next) {
        const named = pool.some((c) => c.subjectKey === cur.issuerKey) || anchors.some((a) => a.subjectKey === cur.issuerKey);
        throw fail(
          code,
          named
            ? `the ${what} chain is broken: the signature of '${cnOf(cur.subject)}' does not verify with its issuer '${cnOf(cur.issuer)}'`
            : `the ${what} chain does not reach a trust anchor: no certificate for issuer '${cnOf(cur.issuer)}'`,
        );
      }
      out.push(next);
      cur = next;
    }
    throw fail(code, `the ${what} chain is too long`);
  }

  /**
   * Intel's certificate profile on a verified chain, once per cached chain. Role names apply when the chain ends at
   * the pinned Intel root or at an anchor that carries its name (the test PKI mimics Intel's names).
   */
  private profile(chain: ParsedCert[], kind: ChainKind): void {
    if (this.profiled[kind].has(chain)) return;
    const anchor = chain[chain.length - 1];
    const intelNames = this.pinned.some((p) => p.hash === anchor.hash) || cnOf(anchor.subject) === INTEL_CN.root;
    try {
      checkChainProfile(chain, kind, intelNames);
    } catch (e) {
      if (e instanceof ProfileError) throw fail(e.code, e.message);
      throw e;
    }
    this.profiled[kind].add(chain);
  }

  private checkWindows(chain: ParsedCert[], at: Date, code: string): void {
    for (const c of chain) {
      if (!validAt(c, at)) {
        throw fail(code, `certificate '${cnOf(c.subject)}' is not valid at ${at.toISOString()} (valid ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()})`);
      }
    }
  }

  /** Every certificate below the anchor must be covered by a valid CRL from its issuer and not be listed in it. */
  private checkRevocation(chain: ParsedCert[], crls: ParsedCrl[], at: Date, warnings: string[], leafCode: string): void {
    for (let i = 0; i + 1 < chain.length; i++) {
      const cert = chain[i];
      const issuer = chain[i + 1];
      const crl = this.crlFor(issuer, crls);
      const t = at.getTime();
      if (t < crl.thisUpdate.getTime() || (crl.nextUpdate && t > crl.nextUpdate.getTime())) {
        throw fail(
          'CRL_EXPIRED',
          `the CRL of '${cnOf(issuer.subject)}' is not valid at ${at.toISOString()} (thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${crl.nextUpdate?.toISOString() ?? 'none'})`,
        );
      }
      if (crl.nextUpdate && crl.nextUpdate.getTime() - t < DAY) {
        warnings.push(`the CRL of '${cnOf(issuer.subject)}' expires within a day (${crl.nextUpdate.toISOString()})`);
      }
      if (crl.revoked.has(cert.serial)) {
        throw fail(
          i === 0 ? leafCode : 'CERT_REVOKED',
          `certificate '${cnOf(cert.subject)}' (serial ${cert.serial}) is revoked by the CRL of '${cnOf(issuer.subject)}'`,
        );
      }
      // The self-signed root is listed on its own CRL if Intel ever revokes it (dcap-qvl checks the root too).
      if (i + 2 === chain.length && issuer.subjectKey === issuer.issuerKey && crl.revoked.has(issuer.serial)) {
        throw fail('CERT_REVOKED', `root certificate '${cnOf(issuer.subject)}' (serial ${issuer.serial}) is revoked by its own CRL`);
      }
    }
  }

  /**
   * The CRL chosen for an issuer among a collateral's CRLs (crlFor), by the (cached, never mutated) CRL array and the
   * issuer object: the choice depends on nothing else (not on the time: windows are checked by the caller).
   */
  private crlFor(issuer: ParsedCert, crls: ParsedCrl[]): ParsedCrl {
    let byIssuer = this.crlChoice.get(crls);
    if (!byIssuer) this.crlChoice.set(crls, (byIssuer = new BoundedMap(64)));
    let crl = byIssuer.get(issuer);
    if (!crl) {
      crl = this.chooseCrl(issuer, crls); // failures are not cached: they throw every time
      byIssuer.set(issuer, crl);
    }
    return crl;
  }

  private chooseCrl(issuer: ParsedCert, crls: ParsedCrl[]): ParsedCrl {
    const named = crls.filter((c) => c.issuerKey === issuer.subjectKey);
    if (named.length === 0) {
      // Platform vs processor: the PCK CA that issued the PCK certificate decides which PCK CRL applies.
      const pckCas: string[] = [INTEL_CN.platformCa, INTEL_CN.processorCa];
      const issuerCn = cnOf(issuer.subject);
      const other = crls.find((c) => pckCas.includes(cnOf(c.issuer)) && cnOf(c.issuer) !== issuerCn);
      if (pckCas.includes(issuerCn) && other) {
        throw fail('PCK_CRL_MISMATCH', `the PCK certificate is issued by '${issuerCn}' but the collateral's PCK CRL is issued by '${cnOf(other.issuer)}'`);
      }
      throw new CollateralError('COLLATERAL_MISSING', `the collateral has no CRL issued by '${cnOf(issuer.subject)}'`);
    }
    let best: ParsedCrl | undefined;
    for (const c of named) {
      const k = `${c.hash}:${issuer.hash}`;
      let ok = this.crlSigs.get(k);
      if (ok === undefined) {
        ok = this.crlCheck(c, issuer);
        this.crlSigs.set(k, ok);
      }
      if (ok instanceof ProfileError) throw fail(ok.code, ok.message);
      if (ok && (!best || c.thisUpdate > best.thisUpdate)) best = c;
    }
    if (!best) throw fail('CRL_SIGNATURE_INVALID', `the CRL of '${cnOf(issuer.subject)}' is not signed by it`);
    return best;
  }

  /** Profile (algorithm, version, CRL number, critical extensions), AKI → issuer SKI, then the signature. */
  private crlCheck(c: ParsedCrl, issuer: ParsedCert): boolean | ProfileError {
    const problem = crlProblem(c);
    if (problem) return problem;
    let aki: string | undefined;
    let ski: string | undefined;
    try {
      aki = crlAki(c);
      ski = certSki(issuer);
    } catch (e) {
      return new ProfileError('CRL_INVALID', `the CRL of '${cnOf(issuer.subject)}' has a key identifier that does not decode: ${(e as Error).message}`);
    }
    if (aki !== undefined && ski !== undefined && aki !== ski) {
      return new ProfileError('CRL_KEY_ID_MISMATCH', `the CRL authorityKeyIdentifier ${aki} is not the subjectKeyIdentifier ${ski} of '${cnOf(issuer.subject)}'`);
    }
    return verifyCrlSignature(c, issuer);
  }

  /**
   * Content hashes of a collateral set. Frozen sets (BundleCollateralProvider hands out frozen sets over bytes only
   * it holds) are hashed once per object; any other set is hashed on every call.
   */
  private prepare(coll: DcapCollateral): PreparedCollateral {
    const frozen = Object.isFrozen(coll) && Object.isFrozen(coll.certs) && Object.isFrozen(coll.crls);
    const hit = frozen ? this.prepared.get(coll) : undefined;
    if (hit) return hit;
    const certs = coll.certs.map((d) => this.cert(d));
    const certsKey = certs.map((c) => c.hash).join(',');
    const p: PreparedCollateral = {
      certs,
      crls: coll.crls.map((d) => this.crl(d)),
      tcbInfoKey: `${sha256Hex(coll.tcbInfo.body, coll.tcbInfo.signature)}:${certsKey}`,
      qeIdentityKey: `${sha256Hex(coll.qeIdentity.body, coll.qeIdentity.signature)}:${certsKey}`,
    };
    if (frozen) this.prepared.set(coll, p);
    return p;
  }

  private signedJson<T>(
    item: SignedJson,
    key: string,
    certs: ParsedCert[],
    what: string,
    code: string,
    cache: Map<string, SignedItem<T>>,
    parse: (text: string) => T,
  ): SignedItem<T> {
    const hit = cache.get(key);
    if (hit) return hit;
    const leaves = certs.filter((c) => !c.isCa);
    if (leaves.length === 0) throw new CollateralError('COLLATERAL_MISSING', `the collateral has no TCB signing certificate for the ${what}`);
    // TCB info and QE identity signatures are ECDSA P-256 r‖s by definition; a signer with any other key is refused by name.
    if (!leaves.some((c) => c.key.asymmetricKeyType === 'ec' && c.key.asymmetricKeyDetails?.namedCurve === 'prime256v1')) {
      throw fail('CERT_ALGORITHM_UNSUPPORTED', `no TCB signing certificate in the collateral has an ECDSA P-256 key to verify the ${what} with`);
    }
    // Signature first: unauthenticated JSON is never interpreted.
    const signer = leaves.find((c) => ecVerify('sha256', item.body, { key: c.key, dsaEncoding: 'ieee-p1363' }, item.signature));
    if (!signer) throw fail(code, `the ${what} signature does not verify with any TCB signing certificate in the collateral`);
    const parsed = parse(Buffer.from(item.body).toString('utf8'));
    const out = { signer, parsed };
    cache.set(key, out);
    return out;
  }

  private checkIssued(p: { issueDate: Date; nextUpdate: Date }, what: string, at: Date, warnings: string[]): void {
    const t = at.getTime();
    if (t < p.issueDate.getTime() || t > p.nextUpdate.getTime()) {
      throw fail(
        'COLLATERAL_EXPIRED',
        `the ${what} is not valid at ${at.toISOString()} (issued ${p.issueDate.toISOString()}, next update ${p.nextUpdate.toISOString()})`,
      );
    }
    if (p.nextUpdate.getTime() - t < DAY) warnings.push(`the ${what} expires within a day (${p.nextUpdate.toISOString()})`);
  }
}
