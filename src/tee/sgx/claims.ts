import type { Claims } from '../common/claims.js';
import { toHex } from '../common/hex.js';
import type { DcapVerified } from '../dcap/verify-quote.js';
import type { EnclaveReport } from '../dcap/enclave-report.js';
import { dcapCommonRaw, dcapPlatform } from '../dcap/claims.js';

/** Normalized claims of a verified SGX quote. */
export function sgxClaims(v: DcapVerified, r: EnclaveReport): Claims {
  const raw = dcapCommonRaw(v);
  raw.cpuSvn = toHex(r.cpuSvn);
  raw.miscSelect = toHex(r.miscSelect);
  raw.attributes = toHex(r.attributes);
  return {
    tee: 'sgx',
    measurements: { mrenclave: toHex(r.mrEnclave), mrsigner: toHex(r.mrSigner) },
    svns: { isvProdId: r.isvProdId, isvSvn: r.isvSvn, qeSvn: v.qeReport.isvSvn, pceSvn: v.pck.pceSvn },
    debug: r.debug,
    reportData: toHex(r.reportData),
    platform: dcapPlatform(v),
    tcbStatus: v.tcb.status,
    advisories: v.tcb.advisories,
    warnings: v.warnings,
    raw,
  };
}
