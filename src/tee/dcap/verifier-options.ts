import { UsageError } from '../common/errors.js';
import type { VerifyOptions } from '../common/verifier.js';
import type { DcapOptions } from './collateral.js';
import type { DcapVerifyOptions } from './verify-quote.js';

/** Picks the DCAP-relevant options out of the generic VerifyOptions, checking their shape. */
export function dcapOptions(opts: VerifyOptions): DcapVerifyOptions {
  // The trust core reads no clock: verifyEvidence() fills opts.at (default now) before it gets here.
  const at = opts.at;
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError('BAD_OPTIONS', 'opts.at (the verification time) is missing or not a valid Date');
  const dcap = opts.dcap as DcapOptions | undefined;
  if (dcap !== undefined && (typeof dcap !== 'object' || dcap === null)) throw new UsageError('BAD_OPTIONS', 'opts.dcap is not an object');
  const trustAnchors = opts.trustAnchors as Uint8Array[] | undefined;
  const verifySignature = opts.verifySignature;
  if (verifySignature !== undefined && typeof verifySignature !== 'function') throw new UsageError('BAD_OPTIONS', 'opts.verifySignature is not a function');
  return { at, dcap, trustAnchors, verifySignature };
}
