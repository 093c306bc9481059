import type { ProductLine } from './abi/product.js';
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

export function snpOptions(v: unknown): SnpOptions {
  return typeof v === 'object' && v !== null ? (v as SnpOptions) : {};
}
