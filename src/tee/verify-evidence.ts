import type { Claims, TcbStatus, TeeType } from './common/claims.js';
import type { EvidenceInput, VerifyOptions } from './common/verifier.js';
import { type ErrorReport, toErrorReport } from './common/errors.js';
import type { VerifierRegistry } from './registry.js';
import { checkNonce } from './nonce.js';

export interface VerificationResult {
  verified: boolean;
  tee?: TeeType;
  tcbStatus?: TcbStatus;
  advisories: string[];
  claims?: Claims;
  errors: ErrorReport[];
}

/**
 * The one entry point the CLI, the services and the tests share: detect or select the verifier, run every check,
 * bind the nonce. Never throws for bad evidence: failures come back as typed error reports with verified=false.
 */
export async function verifyEvidenceWith(
  registry: VerifierRegistry,
  input: EvidenceInput | Uint8Array,
  opts: VerifyOptions = {},
): Promise<VerificationResult> {
  const ev: EvidenceInput = input instanceof Uint8Array ? { evidence: input } : input;
  let tee: TeeType | undefined;
  try {
    const verifier = !opts.tee || opts.tee === 'auto' ? registry.detect(ev) : registry.get(opts.tee);
    tee = verifier.tee;
    // Copy the options only when `at` must be filled in. Object.assign, not an object spread: V8 runs
    // `{ ...o, k }` through a slow generic path that costs about a microsecond per verification here.
    const claims = await verifier.verify(ev, opts.at ? opts : Object.assign({}, opts, { at: new Date() }));
    if (opts.nonce) checkNonce(claims.reportData, opts.nonce);
    return { verified: true, tee, tcbStatus: claims.tcbStatus, advisories: claims.advisories, claims, errors: [] };
  } catch (e) {
    return { verified: false, tee, advisories: [], errors: [toErrorReport(e)] };
  }
}
