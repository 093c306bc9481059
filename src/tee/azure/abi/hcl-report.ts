import { EvidenceFormatError } from '../../common/errors.js';

/**
 * Azure confidential-VM HCL attestation report, as the paravisor writes it to vTPM NV index 0x01400001
 * (azure-cvm-tooling az-cvm-vtpm `hcl::AttestationReport`; checked against Trustee's test reports). Little-endian:
 *   0x000 header: "HCLA" u32, version u32, report_size u32, request_type u32, status u32, reserved[12]
 *   0x020 hw_report[1184]: the SNP ATTESTATION_REPORT, or the TDX TDREPORT (1024 bytes) zero-padded
 *   0x4C0 IGVM request data: data_size u32, version u32, report_type u32 (2 SNP, 4 TDX),
 *         report_data_hash_type u32 (1 SHA-256, 2 SHA-384, 3 SHA-512), variable_data_size u32
 *   0x4D4 variable data (the runtime-data JSON), then padding to the NV size (ignored)
 */
export const HCL_SIGNATURE = 0x414c4348; // "HCLA"
export const HCL_HW_REPORT_OFFSET = 0x20;
export const HCL_HW_REPORT_SIZE = 1184;
export const HCL_IGVM_OFFSET = 0x4c0;
export const HCL_VAR_DATA_OFFSET = 0x4d4;
export const TDREPORT_SIZE = 1024;
/** Header + hw report + the five IGVM words: what report_size counts besides the variable data. */
const FIXED_SIZE = HCL_VAR_DATA_OFFSET;
const IGVM_FIXED = 20;
/** The NV index holds at most a few KB; anything far larger is not an HCL report. */
const MAX_VAR_DATA = 64 * 1024;

export type HclReportType = 'snp' | 'tdx';
const REPORT_TYPES: Record<number, HclReportType> = { 2: 'snp', 4: 'tdx' };
export const HCL_HASH_TYPES: Record<number, { node: string; size: number; name: string }> = {
  1: { node: 'sha256', size: 32, name: 'sha256' },
  2: { node: 'sha384', size: 48, name: 'sha384' },
  3: { node: 'sha512', size: 64, name: 'sha512' },
};

export interface HclReport {
  version: number;
  reportSize: number;
  requestType: number;
  status: number;
  igvmVersion: number;
  reportType: HclReportType;
  hashType: number;
  /** The SNP report (1184 bytes) or the TDREPORT (1024 bytes): a view into the input. */
  hwReport: Uint8Array;
  /** The runtime data exactly as stored: the bytes whose hash the hardware report binds. */
  varData: Uint8Array;
}

function bad(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('HCL_REPORT_MALFORMED', `HCL report: ${msg}`);
}

/** Cheap sniff (no throw): "HCLA" magic and a known report type. */
export function hclReportType(b: Uint8Array): HclReportType | undefined {
  if (b.length < FIXED_SIZE) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== HCL_SIGNATURE) return undefined;
  return REPORT_TYPES[dv.getUint32(HCL_IGVM_OFFSET + 8, true)];
}

export function parseHclReport(b: Uint8Array): HclReport {
  if (b.length < FIXED_SIZE) throw new EvidenceFormatError('TRUNCATED', `HCL report is ${b.length} bytes, shorter than its fixed ${FIXED_SIZE}-byte part`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u32 = (o: number) => dv.getUint32(o, true);
  const sig = u32(0);
  if (sig !== HCL_SIGNATURE) throw bad(`signature 0x${sig.toString(16)} is not "HCLA" (0x414c4348)`);
  const [version, reportSize, requestType, status] = [u32(4), u32(8), u32(12), u32(16)];
  if (status !== 0) throw new EvidenceFormatError('HCL_REPORT_STATUS', `HCL report: status ${status} is not success (0)`);
  const [dataSize, igvmVersion, rawType, hashType, varSize] = [0, 4, 8, 12, 16].map((o) => u32(HCL_IGVM_OFFSET + o));
  const reportType = REPORT_TYPES[rawType];
  if (!reportType) throw bad(`report_type ${rawType} is neither SNP (2) nor TDX (4)`);
  if (!HCL_HASH_TYPES[hashType]) throw bad(`report_data_hash_type ${hashType} is not SHA-256 (1), SHA-384 (2) or SHA-512 (3)`);
  if (varSize > MAX_VAR_DATA) throw bad(`variable_data_size ${varSize} exceeds ${MAX_VAR_DATA}`);
  if (HCL_VAR_DATA_OFFSET + varSize > b.length) {
    throw new EvidenceFormatError('TRUNCATED', `HCL report is truncated: variable data of ${varSize} bytes at 0x4d4 needs ${HCL_VAR_DATA_OFFSET + varSize} bytes, ${b.length} given`);
  }
  // The sizes are redundant; a report whose sizes disagree was not written by the HCL.
  if (dataSize !== IGVM_FIXED + varSize) throw bad(`IGVM data_size ${dataSize} is not 20 + variable_data_size (${IGVM_FIXED + varSize})`);
  if (reportSize !== FIXED_SIZE + varSize) throw bad(`report_size ${reportSize} is not ${FIXED_SIZE} + variable_data_size (${FIXED_SIZE + varSize})`);
  const hwLen = reportType === 'snp' ? HCL_HW_REPORT_SIZE : TDREPORT_SIZE;
  return {
    version,
    reportSize,
    requestType,
    status,
    igvmVersion,
    reportType,
    hashType,
    hwReport: b.subarray(HCL_HW_REPORT_OFFSET, HCL_HW_REPORT_OFFSET + hwLen),
    varData: b.subarray(HCL_VAR_DATA_OFFSET, HCL_VAR_DATA_OFFSET + varSize),
  };
}

/** Builds an HCL report (tests, tooling). `padTo` mimics the NV index padding. */
export function serializeHclReport(r: { version?: number; requestType?: number; reportType: HclReportType; hashType?: number; hwReport: Uint8Array; varData: Uint8Array; padTo?: number }): Uint8Array {
  const len = Math.max(FIXED_SIZE + r.varData.length, r.padTo ?? 0);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, HCL_SIGNATURE, true);
  dv.setUint32(4, r.version ?? (r.reportType === 'snp' ? 1 : 2), true);
  dv.setUint32(8, FIXED_SIZE + r.varData.length, true);
  dv.setUint32(12, r.requestType ?? 2, true);
  if (r.hwReport.length > HCL_HW_REPORT_SIZE) throw new RangeError('hardware report larger than 1184 bytes');
  out.set(r.hwReport, HCL_HW_REPORT_OFFSET);
  dv.setUint32(HCL_IGVM_OFFSET, IGVM_FIXED + r.varData.length, true);
  dv.setUint32(HCL_IGVM_OFFSET + 4, 1, true);
  dv.setUint32(HCL_IGVM_OFFSET + 8, r.reportType === 'snp' ? 2 : 4, true);
  dv.setUint32(HCL_IGVM_OFFSET + 12, r.hashType ?? 1, true);
  dv.setUint32(HCL_IGVM_OFFSET + 16, r.varData.length, true);
  out.set(r.varData, HCL_VAR_DATA_OFFSET);
  return out;
}

/** TDREPORT (TDX module ABI): REPORTMACSTRUCT.reportdata at 128..192; TDINFO.mrtd at 512+16. */
export function tdReportReportData(tdreport: Uint8Array): Uint8Array {
  return tdreport.subarray(128, 192);
}
