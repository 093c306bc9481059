/** Coffer's library surface. The CLI, the services and the tests all verify through verifyEvidence(). */
import { createVerifierRegistry, VerifierRegistry } from './tee/index.js';
import type { EvidenceInput, VerifyOptions } from './tee/common/verifier.js';
import { verifyEvidenceWith, type VerificationResult } from './tee/verify-evidence.js';

export interface VerifyEvidenceOptions extends VerifyOptions {
  /** Reuse a registry (and its verified-collateral caches) across calls; default: a fresh one. */
  registry?: VerifierRegistry;
}

export function verifyEvidence(
  input: EvidenceInput | Uint8Array,
  opts: VerifyEvidenceOptions = {},
): Promise<VerificationResult> {
  const { registry, ...rest } = opts;
  return verifyEvidenceWith(registry ?? createVerifierRegistry(), input, rest);
}

export { createVerifierRegistry, VerifierRegistry, verifyEvidenceWith };
export type { VerificationResult, EvidenceInput, VerifyOptions };
export type { Claims, TeeType, TcbStatus } from './tee/common/claims.js';
export type { TeeVerifier, CommonVerifyOptions } from './tee/common/verifier.js';
export * from './tee/common/errors.js';
export { appraise } from './policy/appraise.js';
export { parsePolicy, PolicyError } from './policy/load.js';
export type { AppraisalPolicy, Appraisal, EarStatus, RuleFailure } from './policy/types.js';
