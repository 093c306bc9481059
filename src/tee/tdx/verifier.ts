import type { Claims } from '../common/claims.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { sniffQuote } from '../dcap/quote.js';
import { TEE_TYPE_TDX } from '../dcap/constants.js';
import { DcapQuoteVerifier } from '../dcap/verify-quote.js';
import { dcapOptions } from '../dcap/verifier-options.js';
import { openDcapCollateral } from '../dcap/collateral.js';
import { parseTdReport } from './td-report.js';
import { tdxClaims } from './claims.js';

/** Intel TDX DCAP quotes (v4 TD 1.0, v5 TD 1.0/1.5). Caches live in this instance. */
export class TdxVerifier implements TeeVerifier {
  readonly tee = 'tdx' as const;
  constructor(private readonly dcap = new DcapQuoteVerifier()) {}

  detect(input: EvidenceInput): boolean {
    return sniffQuote(input.evidence)?.teeType === TEE_TYPE_TDX;
  }

  async verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    const v = await this.dcap.verify(input.evidence, 'tdx', dcapOptions(opts), (q) => {
      const r = parseTdReport(q.body);
      return { teeTcbSvn: r.teeTcbSvn, teeTcbSvn2: r.teeTcbSvn2, mrSignerSeam: r.mrSignerSeam, seamAttributes: r.seamAttributes };
    });
    return tdxClaims(v, parseTdReport(v.quote.body));
  }

  async openCollateral(path: string): Promise<Record<string, unknown>> {
    return { dcap: { provider: await openDcapCollateral(path) } };
  }
}
