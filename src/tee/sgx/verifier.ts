import type { Claims } from '../common/claims.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { sniffQuote } from '../dcap/quote.js';
import { TEE_TYPE_SGX } from '../dcap/constants.js';
import { DcapQuoteVerifier } from '../dcap/verify-quote.js';
import { parseEnclaveReport } from '../dcap/enclave-report.js';
import { dcapOptions } from '../dcap/verifier-options.js';
import { openDcapCollateral } from '../dcap/collateral.js';
import { sgxClaims } from './claims.js';

/** Intel SGX DCAP quotes (v3, v4, and v5 with an SGX body). Caches live in this instance. */
export class SgxVerifier implements TeeVerifier {
  readonly tee = 'sgx' as const;
  constructor(private readonly dcap = new DcapQuoteVerifier()) {}

  detect(input: EvidenceInput): boolean {
    return sniffQuote(input.evidence)?.teeType === TEE_TYPE_SGX;
  }

  async verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    const v = await this.dcap.verify(input.evidence, 'sgx', dcapOptions(opts));
    return sgxClaims(v, parseEnclaveReport(v.quote.body));
  }

  async openCollateral(path: string): Promise<Record<string, unknown>> {
    return { dcap: { provider: await openDcapCollateral(path) } };
  }
}
