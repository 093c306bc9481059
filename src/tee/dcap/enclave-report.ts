import { ENCLAVE_REPORT_LEN } from './constants.js';
import { EvidenceFormatError } from '../common/errors.js';

/**
 * SGX enclave report body (384 bytes), the shape of both an SGX quote body and the QE report
 * (QVL QuoteStructures.h EnclaveReport). Fields are views into the input, not copies.
 */
export interface EnclaveReport {
  cpuSvn: Uint8Array;
  miscSelect: Uint8Array;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
  /** ATTRIBUTES.DEBUG (flags bit 1). */
  debug: boolean;
}

export function parseEnclaveReport(b: Uint8Array): EnclaveReport {
  if (b.length !== ENCLAVE_REPORT_LEN) {
    throw new EvidenceFormatError('BAD_LENGTH', `enclave report is ${b.length} bytes, expected ${ENCLAVE_REPORT_LEN}`);
  }
  return {
    cpuSvn: b.subarray(0, 16),
    miscSelect: b.subarray(16, 20),
    attributes: b.subarray(48, 64),
    mrEnclave: b.subarray(64, 96),
    mrSigner: b.subarray(128, 160),
    isvProdId: b[256] | (b[257] << 8),
    isvSvn: b[258] | (b[259] << 8),
    reportData: b.subarray(320, 384),
    debug: (b[48] & 0x02) !== 0,
  };
}
