import type { Claims } from '../common/claims.js';
import { toHex } from '../common/hex.js';
import type { DcapVerified } from '../dcap/verify-quote.js';
import { dcapCommonRaw, dcapPlatform } from '../dcap/claims.js';
import type { TdReport } from './td-report.js';

/** Normalized claims of a verified TDX quote. */
export function tdxClaims(v: DcapVerified, r: TdReport): Claims {
  const raw = dcapCommonRaw(v);
  raw.teeTcbSvn = toHex(r.teeTcbSvn);
  raw.tdAttributes = toHex(r.tdAttributes);
  raw.seamAttributes = toHex(r.seamAttributes);
  raw.xfam = toHex(r.xfam);
  if (r.teeTcbSvn2) raw.teeTcbSvn2 = toHex(r.teeTcbSvn2);
  if (r.mrServiceTd) raw.mrServiceTd = toHex(r.mrServiceTd);
  if (v.tcb.moduleId) raw.tdxModuleId = v.tcb.moduleId;
  if (v.tcb.tdRelaunchAdvised) {
    raw.tdRelaunchAdvised = true;
    raw.currentTcbStatus = v.tcb.tdRelaunchAdvised.currentStatus;
  }
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
    raw,
  };
}
