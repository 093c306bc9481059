import { VerificationError } from '../common/errors.js';
import type { TcbStatus } from '../common/claims.js';
import type { IsvLevel, QeIdentity, TcbInfo, TcbLevel } from './collateral-json.js';
import type { EnclaveReport } from './enclave-report.js';
import type { PckExtensions } from './pck-extensions.js';

/**
 * TCB level evaluation as Intel QVL does it (QuoteVerifier.cpp 4.1.2.4.9–14, Checks/TcbLevelCheck.cpp,
 * TdxModuleCheck.cpp, EnclaveReportVerifier.cpp; QVL-new EvaluateTcb.cpp convergeTcbStatuses). Pure: no I/O, no
 * crypto; every input was verified before it gets here.
 */
export interface TdxTcbInput {
  teeTcbSvn: Uint8Array;
  /** TD 1.5 bodies: the TCB the TD runs on now (the launch TCB is teeTcbSvn). */
  teeTcbSvn2?: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
}

export interface TcbEvaluation {
  status: TcbStatus;
  advisories: string[];
  platformStatus: TcbStatus;
  qeStatus: TcbStatus;
  moduleStatus?: TcbStatus;
  tcbDate: string;
  moduleId?: string;
  /**
   * TD 1.5: the TD launched on an OutOfDate TCB but the platform's current TCB (TEE_TCB_SVN2) is no longer out of
   * date, so relaunching the TD would bring it up to date (QVL-new TDRelaunchCheck.cpp). Reported, not judged.
   */
  tdRelaunchAdvised?: { currentStatus: TcbStatus };
}

function fail(code: string, msg: string): VerificationError {
  return new VerificationError(code, msg);
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function matchPlatform(info: TcbInfo, pck: PckExtensions, tdx?: TdxTcbInput): TcbLevel | undefined {
  const start = tdx && tdx.teeTcbSvn[1] > 0 ? 2 : 0;
  for (const l of info.tcbLevels) {
    let ok = pck.pceSvn >= l.pceSvn;
    for (let i = 0; ok && i < 16; i++) ok = pck.cpuSvnComponents[i] >= l.sgxComponents[i];
    if (!ok) continue;
    if (tdx) {
      const comps = l.tdxComponents;
      if (!comps) continue;
      for (let i = start; ok && i < 16; i++) ok = tdx.teeTcbSvn[i] >= comps[i];
      if (!ok) continue;
    }
    return l;
  }
  return undefined;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function evaluateModule(info: TcbInfo, quoteVersion: number, tdx: TdxTcbInput): { status?: TcbStatus; level?: IsvLevel; id?: string } {
  const major = tdx.teeTcbSvn[1];
  let mrSigner: Uint8Array;
  let attributes: Uint8Array;
  let levels: IsvLevel[] | undefined;
  let id: string | undefined;
  if (quoteVersion > 3 && major > 0) {
    if (!info.tdxModuleIdentities) {
      throw fail('TCB_INFO_MISMATCH', `the TDX module version ${major} needs tdxModuleIdentities, which the TCB info lacks`);
    }
    id = `TDX_${hex2(major)}`;
    const ident = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    if (!ident) throw fail('TDX_MODULE_MISMATCH', `the TCB info has no TDX module identity ${id}`);
    mrSigner = ident.mrSigner;
    attributes = ident.attributes;
    levels = ident.tcbLevels;
  } else {
    if (!info.tdxModule) throw fail('TCB_INFO_MISMATCH', 'the TDX TCB info has no tdxModule');
    mrSigner = info.tdxModule.mrSigner;
    attributes = info.tdxModule.attributes;
  }
  if (!eq(tdx.mrSignerSeam, mrSigner)) {
    throw fail('TDX_MODULE_MISMATCH', 'MRSIGNERSEAM does not match the TDX module identity in the TCB info');
  }
  // QVL: SEAM attributes must be all zero and equal to the expected attributes (the mask is not applied).
  if (tdx.seamAttributes.some((b) => b !== 0) || !eq(tdx.seamAttributes, attributes)) {
    throw fail('TDX_MODULE_MISMATCH', 'SEAMATTRIBUTES do not match the TDX module identity in the TCB info');
  }
  if (!levels) return { id };
  const level = levels.find((l) => tdx.teeTcbSvn[0] >= l.isvSvn);
  if (!level) {
    throw fail('TCB_LEVEL_NOT_FOUND', `no TCB level of TDX module ${id} matches TDX module SVN ${tdx.teeTcbSvn[0]}`);
  }
  return { status: level.tcbStatus, level, id };
}

function evaluateQe(qe: QeIdentity, report: EnclaveReport, tee: 'sgx' | 'tdx'): IsvLevel {
  const want = tee === 'sgx' ? 'QE' : 'TD_QE';
  if (qe.id !== want) throw fail('QE_IDENTITY_MISMATCH', `the QE identity is for ${qe.id}, a ${tee.toUpperCase()} quote needs ${want}`);
  if (tee === 'tdx' && qe.version < 2) throw fail('QE_IDENTITY_MISMATCH', 'a TD_QE identity must be version 2 or later');
  for (let i = 0; i < 4; i++) {
    if ((report.miscSelect[i] & qe.miscSelectMask[i]) !== qe.miscSelect[i]) {
      throw fail('QE_IDENTITY_MISMATCH', 'QE report MISCSELECT does not match the QE identity');
    }
  }
  for (let i = 0; i < 16; i++) {
    if ((report.attributes[i] & qe.attributesMask[i]) !== qe.attributes[i]) {
      throw fail('QE_IDENTITY_MISMATCH', 'QE report ATTRIBUTES do not match the QE identity');
    }
  }
  if (!eq(report.mrSigner, qe.mrSigner)) throw fail('QE_IDENTITY_MISMATCH', 'QE report MRSIGNER does not match the QE identity');
  if (report.isvProdId !== qe.isvProdId) {
    throw fail('QE_IDENTITY_MISMATCH', `QE report ISVPRODID ${report.isvProdId} does not match the QE identity (${qe.isvProdId})`);
  }
  const level = qe.tcbLevels.find((l) => l.isvSvn <= report.isvSvn);
  if (!level) throw fail('TCB_LEVEL_NOT_FOUND', `no QE identity TCB level matches QE ISVSVN ${report.isvSvn}`);
  return level;
}

function dateMs(l: { tcbDate: string; tcbDateMs?: number }): number {
  return l.tcbDateMs ?? Date.parse(l.tcbDate);
}

/** QVL-new convergeTcbStatuses: a component OutOfDate downgrades the platform, a component Revoked revokes it. */
export function convergeStatus(platform: TcbStatus, components: TcbStatus[]): TcbStatus {
  if (components.includes('Revoked') || platform === 'Revoked') return 'Revoked';
  if (components.includes('OutOfDate')) {
    if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate';
    if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  return platform;
}

export function evaluateTcb(args: {
  tee: 'sgx' | 'tdx';
  quoteVersion: number;
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  pck: PckExtensions;
  qeReport: EnclaveReport;
  tdx?: TdxTcbInput;
}): TcbEvaluation {
  const { tee, tcbInfo: info, pck } = args;
  if (info.fmspc !== pck.fmspc) {
    throw fail('FMSPC_MISMATCH', `the TCB info is for FMSPC ${info.fmspc} but the PCK certificate has FMSPC ${pck.fmspc}`);
  }
  if (info.pceId !== pck.pceId) {
    throw fail('TCB_INFO_MISMATCH', `the TCB info is for PCE-ID ${info.pceId} but the PCK certificate has PCE-ID ${pck.pceId}`);
  }
  const wantId = tee === 'sgx' ? 'SGX' : 'TDX';
  if (info.id !== wantId) throw fail('TCB_INFO_MISMATCH', `the TCB info is for ${info.id} but the quote is ${wantId}`);

  const level = matchPlatform(info, pck, args.tdx);
  if (!level) {
    throw fail(
      'TCB_LEVEL_NOT_FOUND',
      `no TCB level in the TCB info (FMSPC ${info.fmspc}) is at or below the platform's PCK TCB${tee === 'tdx' ? ' and TEE_TCB_SVN' : ''}`,
    );
  }
  const components: TcbStatus[] = [];
  let moduleStatus: TcbStatus | undefined;
  let moduleId: string | undefined;
  let moduleLevel: IsvLevel | undefined;
  if (args.tdx) {
    const m = evaluateModule(info, args.quoteVersion, args.tdx);
    moduleStatus = m.status;
    moduleId = m.id;
    moduleLevel = m.level;
    if (m.status) components.push(m.status);
  }
  const qeLevel = evaluateQe(args.qeIdentity, args.qeReport, tee);
  components.push(qeLevel.tcbStatus);
  // QVL-new finalizeTcbEvaluation: platform ++ QE ++ module advisories (deduped here), tcbDate = the earliest.
  const advisories = [...level.advisoryIds, ...qeLevel.advisoryIds, ...(moduleLevel?.advisoryIds ?? [])];
  let earliest: { tcbDate: string; tcbDateMs?: number } = level;
  for (const l of moduleLevel ? [qeLevel, moduleLevel] : [qeLevel]) if (dateMs(l) < dateMs(earliest)) earliest = l;
  const tcbDate = earliest.tcbDate;
  const status = convergeStatus(level.tcbStatus, components);
  if (status === 'Revoked') {
    throw fail('TCB_REVOKED', `the platform TCB is Revoked (platform ${level.tcbStatus}, QE ${qeLevel.tcbStatus}${moduleStatus ? `, TDX module ${moduleStatus}` : ''})`);
  }
  let tdRelaunchAdvised: TcbEvaluation['tdRelaunchAdvised'];
  const svn2 = args.tdx?.teeTcbSvn2;
  if (svn2 && (status === 'OutOfDate' || status === 'OutOfDateConfigurationNeeded')) {
    try {
      const current = evaluateTcb({ ...args, tdx: { ...args.tdx!, teeTcbSvn: svn2, teeTcbSvn2: undefined } }).status;
      if (current !== 'OutOfDate' && current !== 'OutOfDateConfigurationNeeded') tdRelaunchAdvised = { currentStatus: current };
    } catch {
      // the current TCB matches no level or is revoked: no relaunch advice
    }
  }
  return {
    tdRelaunchAdvised,
    status,
    advisories: [...new Set(advisories)],
    platformStatus: level.tcbStatus,
    qeStatus: qeLevel.tcbStatus,
    moduleStatus,
    tcbDate,
    moduleId,
  };
}
