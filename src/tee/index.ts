import { VerifierRegistry } from './registry.js';
import type { TeeVerifier } from './common/verifier.js';
import { DcapQuoteVerifier } from './dcap/verify-quote.js';
import { SgxVerifier } from './sgx/verifier.js';
import { TdxVerifier } from './tdx/verifier.js';
import { SnpVerifier } from './snp/verifier.js';
import { TpmVerifier } from './tpm/verifier.js';
import { SampleVerifier } from './sample/index.js';
import { AzureVtpmVerifier } from './azure/verifier.js';

/**
 * The verifiers Coffer ships, in auto-detection order (most specific sniff first). Each call builds fresh
 * instances: callers that want warm caches (services, benchmarks) keep and reuse the registry.
 */
export function createVerifierRegistry(): VerifierRegistry {
  // SGX and TDX share one DCAP verifier so their collateral and certificate caches are shared too.
  const dcap = new DcapQuoteVerifier();
  const tdx = new TdxVerifier(dcap);
  const snp = new SnpVerifier();
  const tpm = new TpmVerifier();
  const verifiers: TeeVerifier[] = [
    new SgxVerifier(dcap),
    tdx,
    // Each TEE module adds its verifier here.
    snp,
    tpm,
    // Composites reuse the standalone verifiers (and their caches); their sniffs ("HCLA", Trustee JSON) match nothing else.
    new AzureVtpmVerifier('snp', { snp, tdx, tpm }),
    new AzureVtpmVerifier('tdx', { snp, tdx, tpm }),
    new SampleVerifier(), // last: its JSON sniff must never shadow a real TEE
  ];
  return new VerifierRegistry(verifiers);
}

export { VerifierRegistry } from './registry.js';
export { BundleCollateralProvider, openDcapCollateral } from './dcap/collateral.js';
export type { DcapCollateral, DcapCollateralProvider, DcapCollateralRequest, DcapOptions, SignedJson } from './dcap/collateral.js';
