import type { Claims, TeeType } from '../common/claims.js';
import type { HclReport } from './abi/hcl-report.js';
import type { RuntimeData } from './abi/runtime-data.js';
import type { CompositeEvidence } from './abi/evidence.js';

/**
 * Claims of the composite: the hardware report's (SNP or TDX: measurements, SVNs, TCB status, debug) joined with
 * the vTPM's (PCRs, AK). reportData is the quote's extraData: the verifier's nonce is bound there. Both verifiers'
 * raw fields stay apart under raw.snp / raw.tdx and raw.tpm (policy/snp.ts reads raw.snp).
 */
export function compositeClaims(
  tee: TeeType,
  ev: CompositeEvidence,
  hcl: HclReport,
  rt: RuntimeData,
  runtimeDataHash: string,
  hw: Claims,
  tpm: Claims,
): Claims {
  const hwKey = hcl.reportType;
  const platform: Record<string, string> = { ...hw.platform, ...tpm.platform };
  const vmId = rt.vmConfiguration?.vmUniqueId;
  if (typeof vmId === 'string') platform.vmUniqueId = vmId;
  return {
    tee,
    measurements: { ...hw.measurements, ...tpm.measurements },
    svns: { ...hw.svns },
    debug: hw.debug,
    reportData: tpm.reportData,
    platform,
    ...(hw.tcbStatus ? { tcbStatus: hw.tcbStatus } : {}),
    advisories: [...hw.advisories],
    warnings: [...hw.warnings, ...tpm.warnings],
    ...(hw.notes?.length || tpm.notes?.length ? { notes: [...(hw.notes ?? []), ...(tpm.notes ?? [])] } : {}),
    raw: {
      [hwKey]: hw.raw,
      ...(hwKey === 'tdx' ? { tdxReportData: hw.reportData } : {}),
      tpm: tpm.raw,
      hcl: {
        format: ev.format,
        version: hcl.version,
        requestType: hcl.requestType,
        reportType: hcl.reportType,
        hashType: hcl.hashType,
        runtimeDataHash,
        keyIds: rt.keyIds,
        akJwk: rt.akJwk,
        ...(rt.userData !== undefined ? { userData: rt.userData } : {}),
        ...(rt.vmConfiguration ? { vmConfiguration: rt.vmConfiguration } : {}),
      },
    },
  };
}
