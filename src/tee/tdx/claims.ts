import type { Claims } from '../common/claims.js';
import { toHex } from '../common/hex.js';
import type { DcapVerified } from '../dcap/verify-quote.js';
import { dcapCommonRaw, dcapPlatform } from '../dcap/claims.js';
import type { TdReport } from './td-report.js';

/** Normalized claims of a verified TDX quote. */
export function tdxClaims(v: DcapVerified, r: TdReport): Claims {
  return {
    tee: 'tdx',
    measurements: {
      mrtd: toHex(r.mrTd),
      rtmr0: toHex(r.rtmr[0]),
      rtmr1: toHex(r.rtmr[1]),
      rtmr2: toHex(r.rtmr[2]),
      rtmr3: toHex(r.rtmr[3]),
      mrseam: toHex(r.mrSeam),
      mrsignerseam: toHex(r.mrSignerSeam),
      mrconfigid: toHex(r.mrConfigId),
      mrowner: toHex(r.mrOwner),
      mrownerconfig: toHex(r.mrOwnerConfig),
    },
    svns: {
      tdxModuleSvn: r.teeTcbSvn[0],
      tdxModuleMajor: r.teeTcbSvn[1],
      qeSvn: v.qeReport.isvSvn,
      pceSvn: v.pck.pceSvn,
    },
    debug: r.debug,
    reportData: toHex(r.reportData),
    platform: dcapPlatform(v),
    tcbStatus: v.tcb.status,
    advisories: v.tcb.advisories,
    warnings: v.tcb.tdRelaunchAdvised
      ? [...v.warnings, `TD relaunch advised: the TD launched on an ${v.tcb.status} TCB, the platform's current TCB is ${v.tcb.tdRelaunchAdvised.currentStatus}`]
      : v.warnings,
    raw: {
      ...dcapCommonRaw(v),
      teeTcbSvn: toHex(r.teeTcbSvn),
      tdAttributes: toHex(r.tdAttributes),
      seamAttributes: toHex(r.seamAttributes),
      xfam: toHex(r.xfam),
      ...(r.teeTcbSvn2 ? { teeTcbSvn2: toHex(r.teeTcbSvn2) } : {}),
      ...(r.mrServiceTd ? { mrServiceTd: toHex(r.mrServiceTd) } : {}),
      ...(v.tcb.moduleId ? { tdxModuleId: v.tcb.moduleId } : {}),
      ...(v.tcb.tdRelaunchAdvised ? { tdRelaunchAdvised: true, currentTcbStatus: v.tcb.tdRelaunchAdvised.currentStatus } : {}),
    },
  };
}
