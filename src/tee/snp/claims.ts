import type { Claims } from '../common/claims.js';
import { toHex } from '../common/hex.js';
import type { SnpReport } from './abi/report.js';
import type { TcbVersion } from './abi/tcb.js';

function tcbJson(t: TcbVersion): Record<string, unknown> {
  return { ...t };
}

/** Every decoded field, JSON-safe: bytes as hex, u64 bit fields as hex strings. */
export function rawReport(r: SnpReport): Record<string, unknown> {
  return {
    version: r.version,
    guestSvn: r.guestSvn,
    policy: { value: r.policy.toString(16), ...r.policyBits },
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    vmpl: r.vmpl,
    signatureAlgo: r.signatureAlgo,
    productLine: r.product ?? null,
    tcbLayout: r.tcbLayout,
    currentTcb: tcbJson(r.currentTcb),
    platformInfo: { value: r.platformInfo.toString(16), ...r.platformInfoBits },
    authorKeyEn: r.authorKeyEn,
    maskChipKey: r.maskChipKey,
    signingKey: r.signingKey,
    reportData: toHex(r.reportData),
    measurement: toHex(r.measurement),
    hostData: toHex(r.hostData),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    reportedTcb: tcbJson(r.reportedTcb),
    cpuid: r.cpuid ?? null,
    chipId: toHex(r.chipId),
    committedTcb: tcbJson(r.committedTcb),
    currentVersion: `${r.currentMajor}.${r.currentMinor}.${r.currentBuild}`,
    committedVersion: `${r.committedMajor}.${r.committedMinor}.${r.committedBuild}`,
    currentBuild: r.currentBuild,
    currentMinor: r.currentMinor,
    currentMajor: r.currentMajor,
    committedBuild: r.committedBuild,
    committedMinor: r.committedMinor,
    committedMajor: r.committedMajor,
    launchTcb: tcbJson(r.launchTcb),
    launchMitVector: r.launchMitVector?.toString(16) ?? null,
    currentMitVector: r.currentMitVector?.toString(16) ?? null,
    signature: { r: toHex(r.signatureR), s: toHex(r.signatureS) },
  };
}

/** Normalized claims. SVNs are the REPORTED_TCB ones: the TCB the VCEK/VLEK certifies. */
export function snpClaims(r: SnpReport, warnings: string[]): Claims {
  const t = r.reportedTcb;
  const svns: Record<string, number> = {
    guestSvn: r.guestSvn,
    bootloader: t.bootloader,
    tee: t.tee,
    snp: t.snp,
    microcode: t.microcode,
    vmpl: r.vmpl,
  };
  if (t.fmc !== undefined) svns.fmc = t.fmc;
  return {
    tee: 'snp',
    measurements: {
      measurement: toHex(r.measurement),
      hostData: toHex(r.hostData),
      idKeyDigest: toHex(r.idKeyDigest),
      authorKeyDigest: toHex(r.authorKeyDigest),
      familyId: toHex(r.familyId),
      imageId: toHex(r.imageId),
      reportId: toHex(r.reportId),
      reportIdMa: toHex(r.reportIdMa),
    },
    svns,
    debug: r.policyBits.debug,
    reportData: toHex(r.reportData),
    platform: {
      productLine: r.product ?? 'unknown',
      chipId: toHex(r.tcbLayout === 'turin' ? r.chipId.subarray(0, 8) : r.chipId),
      signingKey: r.signingKey,
    },
    advisories: [],
    warnings,
    raw: rawReport(r),
  };
}
