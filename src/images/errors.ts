import { CofferError } from '../tee/common/errors.js';

/**
 * Why an image was not admitted. `code` is stable (CLI JSON, admission messages, tests):
 * REF_INVALID, REPOSITORY_NOT_ALLOWED, REGISTRY_UNREACHABLE, REGISTRY_ERROR, NOT_FOUND, DIGEST_MISMATCH,
 * TOO_LARGE, MANIFEST_INVALID, PLATFORM_NOT_FOUND, NO_SIGNATURES, SIGNATURE_INVALID, PAYLOAD_MISMATCH,
 * CERTIFICATE_INVALID, IDENTITY_MISMATCH, TLOG_INVALID, POLICY_INVALID, TRUST_ROOT_INVALID.
 */
export class ImageError extends CofferError {}

/** A signature candidate that failed one check: collected so a denial can say why each candidate failed. */
export interface CandidateFailure {
  signature: string;
  code: string;
  message: string;
}
