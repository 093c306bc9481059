/** The normalized claims every verifier produces; policy/ sees only this shape. */

export const TEE_TYPES = ['sgx', 'tdx', 'snp', 'tpm', 'az-snp-vtpm', 'az-tdx-vtpm', 'sample'] as const;
export type TeeType = (typeof TEE_TYPES)[number];

/** Intel's TCB status strings, plus 'NotApplicable' for TEEs without a TCB status notion. */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export interface Claims {
  tee: TeeType;
  /**
   * Named measurements, lower-case hex. SGX: mrenclave, mrsigner. TDX: mrtd, rtmr0..rtmr3, mrseam, mrsignerseam,
   * mrconfigid, mrowner, mrownerconfig. SNP: measurement, hostData, idKeyDigest, authorKeyDigest... TPM: pcr<bank>_<n>.
   */
  measurements: Record<string, string>;
  /** Security version numbers by name (isvSvn, isvProdId, qeSvn, pceSvn, bootloader, tee, snp, microcode...). */
  svns: Record<string, number>;
  debug: boolean;
  /** Report data (SGX/TDX/SNP) or TPM extraData, lower-case hex. The nonce check runs on this. */
  reportData: string;
  /** Platform identifiers: fmspc, pceId, chipId, productLine, ... */
  platform: Record<string, string>;
  /** Vendor TCB status where the TEE has one. */
  tcbStatus?: TcbStatus;
  advisories: string[];
  /** Non-fatal observations (e.g. collateral close to expiry). */
  warnings: string[];
  /**
   * Informational notes (`CODE: text`) that no policy weighs: facts made moot by a stronger check (e.g. the AK's
   * TPM attributes are unknown, but a TEE report binds the AK by hardware).
   */
  notes?: string[];
  /** TEE-specific parsed fields, JSON-safe (bytes as hex). */
  raw: Record<string, unknown>;
}
