import type { TcbStatus, TeeType } from '../tee/common/claims.js';
import type { SnpPolicy } from './snp.js';

/**
 * Reference values and rules for appraising verified claims (the `coffer verify --policy` file, and the
 * attestation service's reference values). Every field is optional; an empty policy still forbids debug.
 */
export interface AppraisalPolicy {
  /** TEE types accepted; absent = any. */
  tees?: TeeType[];
  /** Debug enclaves/TDs/VMs are rejected unless this is true. */
  allowDebug?: boolean;
  /** TCB statuses accepted; absent = reported but not judged. */
  allowedTcbStatuses?: TcbStatus[];
  /** Advisory IDs tolerated; absent = not judged; present = any advisory not listed fails. */
  allowedAdvisories?: string[];
  /** Measurement name → accepted values (hex, case-insensitive). A named measurement missing from claims fails. */
  measurements?: Record<string, string[]>;
  /** SVN name → minimum value. A named SVN missing from claims fails. */
  minSvns?: Record<string, number>;
  /** Platform field name → accepted values (e.g. fmspc, productLine). */
  platform?: Record<string, string[]>;
  /** SEV-SNP rules beyond the generic ones (VMPL, signing key, guest policy bits, TCB minima); see snp.ts. */
  snp?: SnpPolicy;
  /**
   * Written by `coffer up --dev` (names the sample TEE): only a dev-mode service appraises with these reference
   * values; any other fails every appraisal that uses them (DEV_REFERENCE_VALUES).
   */
  dev?: boolean;
}

/** IETF RATS EAR trustworthiness tiers. */
export type EarStatus = 'affirming' | 'warning' | 'contraindicated';

export interface RuleFailure {
  rule: string;
  code: string;
  message: string;
}

export interface Appraisal {
  status: EarStatus;
  failures: RuleFailure[];
  warnings: string[];
}
