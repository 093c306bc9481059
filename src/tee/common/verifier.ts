import type { KeyObject } from 'node:crypto';
import type { Claims, TeeType } from './claims.js';

/**
 * What a caller hands the trust core. `evidence` is the primary blob (quote, report, TPMS_ATTEST...);
 * `attachments` carries the rest by well-known name (TPM: signature, ak, pcrs, eventlog; SNP: certs...).
 */
export interface EvidenceInput {
  evidence: Uint8Array;
  attachments?: Record<string, Uint8Array>;
}

/**
 * Options for one verification. Time and collateral come in as arguments: the trust core reads no clock and no
 * global state of its own. Per-TEE settings live under the TEE's own key so verifiers stay independent.
 */
export interface VerifyOptions {
  /** 'auto' (default) detects the TEE from the evidence bytes. */
  tee?: TeeType | 'auto';
  /** Verification time (default: now). Old evidence verifies "as of" its collateral's window. */
  at?: Date;
  /** Expected freshness value: report data must start with it, or with its SHA-256/384/512. */
  nonce?: Uint8Array;
  /** Per-evidence signatures verified through this instead of synchronously (DCAP quotes, SEV-SNP reports); see AsyncSignatureVerifier. */
  verifySignature?: AsyncSignatureVerifier;
  /** TEE-specific options, keyed by the verifier (e.g. `dcap`, `snp`, `tpm`, `sample`). */
  [teeOptions: string]: unknown;
}

/**
 * An asynchronous signature verify with node:crypto.verify's arguments (e.g. its callback form, which runs on
 * libuv's thread pool): a batch caller injects it so its thread parses the next evidence while the pool verifies.
 * Only `true` means valid; a rejection fails the evidence like a synchronous verify's exception would.
 */
export type AsyncSignatureVerifier = (
  alg: string,
  data: Uint8Array,
  key: { key: KeyObject; dsaEncoding: 'ieee-p1363' },
  signature: Uint8Array,
) => Promise<boolean>;

export interface TeeVerifier {
  readonly tee: TeeType;
  /** Cheap structural sniff used by `tee: 'auto'`; must not throw. */
  detect(input: EvidenceInput): boolean;
  /**
   * Full verification. Resolves with claims only when every check held; otherwise throws a CofferError subclass
   * with a stable code. A check that cannot be performed (missing collateral...) is a rejection: fail closed.
   */
  verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims>;
  /**
   * Turns a `--collateral PATH` (file or directory) into the options this verifier reads. Optional: TEEs without
   * external collateral do not implement it.
   */
  openCollateral?(path: string): Promise<Record<string, unknown>>;
}

/**
 * Options every verifier honours. `trustAnchors` replaces the pinned vendor roots (private PKI, tests); it is
 * never filled from the evidence or its collateral.
 */
export interface CommonVerifyOptions {
  at: Date;
  trustAnchors?: Uint8Array[];
}
