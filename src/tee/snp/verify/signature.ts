import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { VerificationError } from '../../common/errors.js';
import type { AsyncSignatureVerifier } from '../../common/verifier.js';
import { SIGNED_LENGTH } from '../abi/report.js';

/**
 * Converts the report's little-endian 72-byte R and S into a 96-byte IEEE P1363 r‖s (go-sev-guest
 * abi.ReportToSignatureDER): reverse each, then the upper 24 bytes must be zero for a P-384 scalar.
 */
export function p1363FromReport(rLe: Uint8Array, sLe: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(96);
  for (const [le, off] of [
    [rLe, 0],
    [sLe, 48],
  ] as const) {
    const be = Uint8Array.from(le).reverse();
    if (be.subarray(0, 24).some((x) => x !== 0)) return undefined;
    out.set(be.subarray(24), off);
  }
  return out;
}

function checkKey(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new VerificationError('REPORT_SIGNATURE_INVALID', 'the VCEK/VLEK public key is not an ECDSA P-384 key');
  }
}

const invalid = () => new VerificationError('REPORT_SIGNATURE_INVALID', 'the report signature does not verify with the VCEK/VLEK public key (ECDSA P-384, SHA-384)');

/** ECDSA P-384 / SHA-384 over bytes [0, 0x2A0) of the report. */
export function verifyReportSignature(report: Uint8Array, rLe: Uint8Array, sLe: Uint8Array, key: KeyObject): void {
  const sig = p1363FromReport(rLe, sLe);
  checkKey(key);
  const ok =
    sig !== undefined &&
    cryptoVerify('sha384', report.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' }, sig);
  if (!ok) throw invalid();
}

/** The same check through an injected asynchronous verifier (opts.verifySignature): only `true` is valid. */
export async function verifyReportSignatureWith(report: Uint8Array, rLe: Uint8Array, sLe: Uint8Array, key: KeyObject, verify: AsyncSignatureVerifier): Promise<void> {
  const sig = p1363FromReport(rLe, sLe);
  checkKey(key);
  if (sig === undefined || (await verify('sha384', report.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' }, sig)) !== true) throw invalid();
}
