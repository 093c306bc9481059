/** Azure confidential VMs: HCL report (SNP report or TDREPORT + runtime data with HCLAkPub) + vTPM quote. */
export { AzureVtpmVerifier, type AzureVtpmDeps } from './verifier.js';
export { parseHclReport, serializeHclReport, hclReportType, type HclReport, type HclReportType } from './abi/hcl-report.js';
export { parseRuntimeData, type RuntimeData } from './abi/runtime-data.js';
export { parseCompositeEvidence, parseTrusteeEvidence, sniffComposite, type CompositeEvidence } from './abi/evidence.js';
