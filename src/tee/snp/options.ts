import { UsageError } from '../common/errors.js';
import { isProductLine, type ProductLine } from './abi/product.js';
import type { SnpCollateralProvider } from './collateral/kds.js';

/** `opts.snp`: everything the SEV-SNP verifier reads besides the common `at` and `trustAnchors`. */
export interface SnpOptions {
  /** Certificates as PEM or DER blobs, each possibly a bundle: VCEK/VLEK, ASK/ASVK, ARK (an ARK here is NOT trusted). */
  certs?: Uint8Array[];
  /** DER or PEM CRLs signed by the ARK; checked when given. */
  crls?: Uint8Array[];
  /** Extended-report certificate table (SNP_GET_EXT_REPORT); also accepted as attachment `certs`. */
  certTable?: Uint8Array;
  /** Product of a version-2 report (no CPUID in it); otherwise taken from the VCEK's productName. */
  productLine?: ProductLine;
  /** Fallback source for missing certificates (KdsProvider: HTTP and/or a KDS-shaped cache). */
  provider?: SnpCollateralProvider;
  /** Reject when no CRL from the ARK is available. */
  requireCrl?: boolean;
}

const bytesList = (v: unknown) => Array.isArray(v) && v.every((x) => x instanceof Uint8Array);

/** `opts.snp` comes through an untyped index signature: check its shape so misuse is a typed error, not a crash. */
export function snpOptions(v: unknown): SnpOptions {
  if (v === undefined) return {};
  const bad = (what: string) => new UsageError('SNP_OPTIONS_INVALID', `opts.snp.${what}`);
  if (typeof v !== 'object' || v === null) throw new UsageError('SNP_OPTIONS_INVALID', 'opts.snp must be an object');
  const o = v as Record<string, unknown>;
  if (o.certs !== undefined && !bytesList(o.certs)) throw bad('certs must be a list of Uint8Array');
  if (o.crls !== undefined && !bytesList(o.crls)) throw bad('crls must be a list of Uint8Array');
  if (o.certTable !== undefined && !(o.certTable instanceof Uint8Array)) throw bad('certTable must be a Uint8Array');
  if (o.productLine !== undefined && !isProductLine(o.productLine)) throw bad(`productLine must be Milan, Genoa or Turin`);
  if (o.requireCrl !== undefined && typeof o.requireCrl !== 'boolean') throw bad('requireCrl must be a boolean');
  const p = o.provider as Record<string, unknown> | undefined;
  if (p !== undefined && (typeof p !== 'object' || p === null || typeof p.vcek !== 'function' || typeof p.chain !== 'function' || typeof p.crl !== 'function')) {
    throw bad('provider must implement vcek(), chain() and crl()');
  }
  return o as SnpOptions;
}
