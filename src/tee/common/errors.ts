/**
 * Typed errors of the trust core. Every rejection carries a stable `code` (part of the CLI/API contract: never
 * rename one) and a sentence that names the failed check.
 */
export class CofferError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Evidence was malformed: truncated, bad length field, unknown version/type, trailing bytes. */
export class EvidenceFormatError extends CofferError {}

/** Evidence parsed but a cryptographic or collateral check failed (signature, chain, CRL, window, TCB...). */
export class VerificationError extends CofferError {}

/** Collateral (certificates, CRLs, TCB info...) is missing, malformed or not trustworthy. */
export class CollateralError extends CofferError {}

/** Caller supplied inconsistent options (e.g. a TEE type no verifier handles). */
export class UsageError extends CofferError {}

export interface ErrorReport {
  code: string;
  message: string;
}

/** Turns anything thrown into a report; unknown exceptions become INTERNAL so they are never a silent pass. */
export function toErrorReport(e: unknown): ErrorReport {
  if (e instanceof CofferError) return { code: e.code, message: e.message };
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message: `unexpected error during verification: ${message}` };
}
