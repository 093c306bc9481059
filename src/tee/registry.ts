import type { TeeType } from './common/claims.js';
import type { EvidenceInput, TeeVerifier } from './common/verifier.js';
import { UsageError } from './common/errors.js';

/**
 * The set of verifiers verifyEvidence() dispatches to. Built by the caller (or `defaultRegistry()`), never a
 * module-level mutable singleton, so services and tests can compose their own.
 */
export class VerifierRegistry {
  private readonly byTee = new Map<TeeType, TeeVerifier>();

  constructor(verifiers: Iterable<TeeVerifier> = []) {
    for (const v of verifiers) this.byTee.set(v.tee, v);
  }

  with(v: TeeVerifier): VerifierRegistry {
    return new VerifierRegistry([...this.byTee.values(), v]);
  }

  get(tee: TeeType): TeeVerifier {
    const v = this.byTee.get(tee);
    if (!v) throw new UsageError('UNSUPPORTED_TEE', `no verifier for TEE type '${tee}' is available`);
    return v;
  }

  list(): TeeType[] {
    return [...this.byTee.keys()];
  }

  /** First verifier whose sniff accepts the evidence; detection order is registration order. */
  detect(input: EvidenceInput): TeeVerifier {
    for (const v of this.byTee.values()) {
      let hit = false;
      try {
        hit = v.detect(input);
      } catch {
        hit = false;
      }
      if (hit) return v;
    }
    throw new UsageError(
      'UNKNOWN_EVIDENCE',
      'could not recognise the evidence format (pass --tee to say which TEE produced it)',
    );
  }
}
