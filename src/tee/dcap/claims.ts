import { toHex } from '../common/hex.js';
import type { DcapVerified } from './verify-quote.js';

export function dcapPlatform(v: DcapVerified): Record<string, string> {
  return { fmspc: v.pck.fmspc, pceId: v.pck.pceId, pckCaType: v.caType };
}

/** Raw DCAP fields shared by SGX and TDX claims (JSON-safe). */
export function dcapCommonRaw(v: DcapVerified): Record<string, unknown> {
  // Built by assignment, not spreads: callers add their fields to this object (V8's spread path is slow here).
  const raw: Record<string, unknown> = {
    quoteVersion: v.quote.version,
    qeVendorId: toHex(v.quote.qeVendorId),
    userData: toHex(v.quote.userData),
    pckCpuSvn: toHex(v.pck.cpuSvn),
    pckTcbComponents: v.pck.cpuSvnComponents,
    pckPceSvn: v.pck.pceSvn,
    tcbDate: v.tcb.tcbDate,
    platformTcbStatus: v.tcb.platformStatus,
    qeTcbStatus: v.tcb.qeStatus,
    tcbEvaluationDataNumber: v.tcbInfo.tcbEvaluationDataNumber,
    qeIsvSvn: v.qeReport.isvSvn,
  };
  if (v.tcb.moduleStatus) raw.tdxModuleTcbStatus = v.tcb.moduleStatus;
  return raw;
}
