import { toHex } from '../common/hex.js';
import type { DcapVerified } from './verify-quote.js';

export function dcapPlatform(v: DcapVerified): Record<string, string> {
  return { fmspc: v.pck.fmspc, pceId: v.pck.pceId, pckCaType: v.caType };
}

/** Raw DCAP fields shared by SGX and TDX claims (JSON-safe). */
export function dcapCommonRaw(v: DcapVerified): Record<string, unknown> {
  return {
    quoteVersion: v.quote.version,
    qeVendorId: toHex(v.quote.qeVendorId),
    userData: toHex(v.quote.userData),
    pckCpuSvn: toHex(v.pck.cpuSvn),
    pckTcbComponents: v.pck.cpuSvnComponents,
    pckPceSvn: v.pck.pceSvn,
    tcbDate: v.tcb.tcbDate,
    platformTcbStatus: v.tcb.platformStatus,
    qeTcbStatus: v.tcb.qeStatus,
    ...(v.tcb.moduleStatus ? { tdxModuleTcbStatus: v.tcb.moduleStatus } : {}),
    tcbEvaluationDataNumber: v.tcbInfo.tcbEvaluationDataNumber,
    qeIsvSvn: v.qeReport.isvSvn,
  };
}
