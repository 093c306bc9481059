import { createHash, type KeyObject } from 'node:crypto';
import { VerificationError } from '../../common/errors.js';
import { bytesEqual, toHex } from '../../common/hex.js';
import { checkNonce } from '../../nonce.js';
import { HCL_HASH_TYPES, tdReportReportData, type HclReport } from '../abi/hcl-report.js';

/**
 * The HCL's binding: REPORT_DATA[0..n) of the verified hardware report equals H(variable data bytes as stored),
 * H from report_data_hash_type (azure-cvm-tooling `var_data_sha256`; Trustee `verify_report_data`).
 */
export function checkRuntimeDataBinding(hcl: HclReport, reportData: Uint8Array, what: string): string {
  const h = HCL_HASH_TYPES[hcl.hashType];
  const digest = createHash(h.node).update(hcl.varData).digest();
  if (reportData.length < h.size || !bytesEqual(reportData.subarray(0, h.size), digest)) {
    throw new VerificationError(
      'AZ_RUNTIME_DATA_MISMATCH',
      `the ${what} report data does not start with the ${h.name} of the HCL runtime data (${toHex(digest)}), so the runtime data and its AK are not bound to the report`,
    );
  }
  return toHex(digest);
}

/**
 * TDX: the TD quote is what is signed; the HCL's own TDREPORT (MAC'ed, not verifiable off the platform) must carry
 * the same report data, or the HCL report and the TD quote come from different requests.
 */
export function checkTdReportConsistency(hcl: HclReport, quoteReportData: Uint8Array): void {
  const inner = tdReportReportData(hcl.hwReport);
  if (!bytesEqual(inner, quoteReportData)) {
    throw new VerificationError('AZ_TDREPORT_MISMATCH', `the HCL report's TDREPORT report data ${toHex(inner)} differs from the TD quote's ${toHex(quoteReportData)}`);
  }
}

function spki(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'spki' });
}

/** The AK the quote is checked with must be HCLAkPub of the bound runtime data. */
export function checkAkBound(ak: KeyObject, bound: KeyObject): void {
  if (!spki(ak).equals(spki(bound))) {
    throw new VerificationError('AZ_AK_NOT_BOUND', 'the attestation key is not HCLAkPub of the runtime data bound by the hardware report');
  }
}

/**
 * Evidence v2: the guest put the verifier's report data into runtime data "user-data" before the report was
 * taken; it must start with the nonce or its SHA-256/384/512, the rule the quote's extraData follows too.
 */
export function checkUserData(userData: string | undefined, nonce: Uint8Array | undefined): void {
  if (userData === undefined) throw new VerificationError('AZ_USER_DATA_MISMATCH', 'evidence v2 requires "user-data" in the HCL runtime data, and it has none');
  if (!nonce) return;
  try {
    checkNonce(userData, nonce);
  } catch {
    throw new VerificationError('AZ_USER_DATA_MISMATCH', `runtime data "user-data" ${userData.slice(0, 32)}… does not start with the nonce ${toHex(nonce)} nor its SHA-256/384/512`);
  }
}
