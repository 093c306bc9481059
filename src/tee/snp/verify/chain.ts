import { VerificationError, CollateralError } from '../../common/errors.js';
import type { ProductLine } from '../abi/product.js';
import type { SigningKey } from '../abi/report.js';
import { AMD_PSS_PARAMS, OID_RSASSA_PSS, parseVcekExtensions, sha256Hex, type SnpCert, type VcekExtensions } from '../certs/parse.js';
import { checkCrl, crlsForArk, type ParsedCrl } from './crl.js';

/**
 * ARK → ASK (VCEK) or ASVK (VLEK) → VCEK/VLEK. Every link is RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 (AMD KDS
 * spec 57230); the ARK must be one of the trust anchors; product names must agree along the chain. The signature
 * work depends only on certificate contents, so it is cached by content hash in a cache the verifier owns; the
 * validity windows and CRL window depend on `at` and are re-checked on every call.
 */
export interface EndorsementKey {
  leaf: SnpCert;
  ext: VcekExtensions;
  intermediate: SnpCert;
  ark: SnpCert;
}

interface Verified extends EndorsementKey {
  crl?: ParsedCrl;
}

export interface ChainInput {
  product: ProductLine;
  signingKey: Exclude<SigningKey, 'none'>;
  leaves: SnpCert[];
  intermediates: SnpCert[];
  arks: SnpCert[];
  crls: ParsedCrl[];
  at: Date;
  requireCrl?: boolean;
}

/** ARK and newest CRL verified above one ASK/ASVK (undefined ark: no trusted ARK signed it). */
interface Upper {
  ark?: SnpCert;
  crl?: ParsedCrl;
}

/** Bounded so a stream of distinct chains cannot grow memory without limit. */
export class ChainCache {
  private readonly map = new Map<string, Verified>();
  /**
   * The part above the leaf (ASK by ARK, ARK self-signature, CRL by ARK) by content, so that a VCEK never seen
   * before (a new platform in a fleet) costs only its own signature check. Successes only: a failure is recomputed.
   */
  readonly upper = new Map<string, Upper>();
  constructor(private readonly max = 256) {}
  setUpper(k: string, v: Upper): void {
    if (this.upper.size >= this.max) this.upper.delete(this.upper.keys().next().value as string);
    this.upper.set(k, v);
  }
  get(k: string): Verified | undefined {
    return this.map.get(k);
  }
  set(k: string, v: Verified): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
    this.map.set(k, v);
  }
  get size(): number {
    return this.map.size;
  }
}

function chainError(msg: string): VerificationError {
  return new VerificationError('VCEK_CHAIN_INVALID', msg);
}

function checkPss(c: SnpCert): void {
  if (c.sigAlgOid !== OID_RSASSA_PSS || !AMD_PSS_PARAMS.has(c.sigAlgParams)) {
    throw chainError(`${c.cn} is not signed with RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48 as AMD certificates are`);
  }
}

function signedBy(child: SnpCert, parent: SnpCert): boolean {
  try {
    return child.x509.checkIssued(parent.x509) && child.x509.verify(parent.publicKey);
  } catch {
    return false; // e.g. a key type that cannot verify this signature: not signed by it
  }
}

function checkWindow(c: SnpCert, at: Date): void {
  if (at < c.notBefore) {
    throw new VerificationError('CERT_NOT_YET_VALID', `${c.cn} is valid from ${c.notBefore.toISOString()}, after ${at.toISOString()}`);
  }
  if (at > c.notAfter) {
    throw new VerificationError('CERT_EXPIRED', `${c.cn} expired at ${c.notAfter.toISOString()} (verification time ${at.toISOString()})`);
  }
}

/** Signature-only part (input-independent of `at`): ARK self-signature, ASK by ARK, leaf by ASK, CRL by ARK. */
function verifySignatures(
  product: ProductLine,
  signingKey: 'vcek' | 'vlek',
  leaf: SnpCert,
  arks: SnpCert[],
  intermediates: SnpCert[],
  crls: ParsedCrl[],
  cache: ChainCache,
): Verified {
  const interRole = signingKey === 'vcek' ? 'ask' : 'asvk';
  checkPss(leaf);
  if (leaf.x509.ca) throw chainError(`${leaf.cn} is a CA certificate; an endorsement key certificate must not be`);
  let ext: VcekExtensions;
  try {
    ext = parseVcekExtensions(leaf);
  } catch (e) {
    throw chainError((e as Error).message);
  }
  if (ext.product !== product) {
    throw new VerificationError('PRODUCT_MISMATCH', `${leaf.cn} is for product '${ext.productName}', the report is from ${product}`);
  }
  if (signingKey === 'vlek' && ext.hwId) throw chainError('a VLEK certificate must not carry a hwID');
  if (signingKey === 'vcek' && !ext.hwId) throw chainError('the VCEK certificate has no hwID extension');
  const issuers = intermediates.filter((c) => c.role === interRole && c.product === product && signedBy(leaf, c));
  if (issuers.length === 0) {
    throw chainError(`${leaf.cn} is not signed by any ${interRole.toUpperCase()} for ${product} in the collateral`);
  }
  for (const inter of issuers) {
    const key = [product, inter.hash, ...arks.map((a) => a.hash), ...crls.map((c) => c.hash)].join(',');
    let up = cache.upper.get(key);
    if (!up) {
      up = verifyUpper(product, inter, arks, crls);
      cache.setUpper(key, up);
    }
    if (!up.ark) continue;
    return { leaf, ext, intermediate: inter, ark: up.ark, crl: up.crl };
  }
  throw chainError(`the ${interRole.toUpperCase()} for ${product} is not signed by a trusted ARK-${product}`);
}

/** ASK/ASVK by a trusted ARK, the ARK's self-signature, and the ARK's CRLs (newest wins). */
function verifyUpper(product: ProductLine, inter: SnpCert, arks: SnpCert[], crls: ParsedCrl[]): Upper {
  checkPss(inter);
  if (!inter.x509.ca) throw chainError(`${inter.cn} is not a CA certificate (basicConstraints cA)`);
  const ark = arks.find((a) => a.product === product && signedBy(inter, a));
  if (!ark) return {};
  checkPss(ark);
  if (!ark.x509.ca) throw chainError(`${ark.cn} is not a CA certificate (basicConstraints cA)`);
  if (!signedBy(ark, ark)) throw chainError(`trust anchor ${ark.cn} is not a valid self-signed certificate`);
  const mine = crlsForArk(crls, ark);
  const crl = mine.sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime())[0];
  return { ark, crl };
}

export function verifyChain(input: ChainInput, cache: ChainCache): EndorsementKey {
  const { product, signingKey, at } = input;
  const leaves = input.leaves.filter((c) => c.role === signingKey);
  if (leaves.length === 0) {
    throw new CollateralError('CERTS_MISSING', `no ${signingKey.toUpperCase()} certificate was supplied (collateral, certificate table or KDS)`);
  }
  const arks = input.arks.filter((a) => a.role === 'ark' && a.product === product);
  if (arks.length === 0) throw chainError(`no trust anchor ARK-${product} is configured`);
  let firstError: unknown;
  for (const leaf of leaves) {
    const key = sha256Hex(
      Buffer.from(
        [product, signingKey, leaf.hash, ...arks.map((a) => a.hash), ...input.intermediates.map((c) => c.hash), ...input.crls.map((c) => c.hash)].join(
          ',',
        ),
      ),
    );
    try {
      let v = cache.get(key);
      if (!v) {
        v = verifySignatures(product, signingKey, leaf, arks, input.intermediates, input.crls, cache);
        cache.set(key, v);
      }
      for (const c of [v.ark, v.intermediate, v.leaf]) checkWindow(c, at);
      if (v.crl) checkCrl(v.crl, at, [v.intermediate]);
      else if (input.requireCrl) throw new CollateralError('CRL_MISSING', `no CRL issued by ${v.ark.cn} was supplied and opts.snp.requireCrl is set`);
      return v;
    } catch (e) {
      firstError ??= e;
    }
  }
  throw firstError;
}
