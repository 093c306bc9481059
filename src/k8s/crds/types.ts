import type { ImagePolicySpec } from '../../images/policy.js';

export type { ImagePolicySpec } from '../../images/policy.js';

/**
 * Coffer's own configuration kinds (group coffer.dev, version v1alpha1, both cluster-scoped). The CRD schemas in
 * schemas.ts and the loader in load.ts enforce the same shape; keep the three in step.
 */

export const COFFER_GROUP = 'coffer.dev';
export const COFFER_VERSION = 'v1alpha1';
export const COFFER_API_VERSION = `${COFFER_GROUP}/${COFFER_VERSION}`;

/** Isolation levels, weakest first: the index is the strength ("strictest wins" compares indices). */
export const ISOLATION_LEVELS = ['none', 'sandbox', 'confidential-vm', 'enclave'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

export function isolationRank(level: IsolationLevel): number {
  return ISOLATION_LEVELS.indexOf(level);
}

/** The namespace label the controller sets on every namespace an IsolationPolicy selects (its strictest level). */
export const ISOLATION_NS_LABEL = 'coffer.dev/isolation';

export const ENFORCE_MODES = ['mutate', 'deny'] as const;
export type EnforceMode = (typeof ENFORCE_MODES)[number];

export const SIZING_MODES = ['aks', 'none'] as const;
export type SizingMode = (typeof SIZING_MODES)[number];

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** metav1.LabelSelector: matchLabels and matchExpressions are ANDed; an empty selector matches everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ObjectMeta {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface IsolationPolicySpec {
  namespaceSelector: LabelSelector;
  podSelector?: LabelSelector;
  isolation: IsolationLevel;
  /** RuntimeClass (= RuntimeProfile name) to run matching pods with; defaulted per level when absent. */
  runtimeClassName?: string;
  enforce: EnforceMode;
  sizing: SizingMode;
  /** Edge autonomy: pods tolerate unreachable/not-ready nodes forever instead of being evicted after 300 s. */
  autonomy: boolean;
  /** Image signature policy (sandbox and stronger): allowed repositories and required signers; images pinned by digest. */
  images?: ImagePolicySpec;
}

export interface IsolationPolicy {
  apiVersion: typeof COFFER_API_VERSION;
  kind: 'IsolationPolicy';
  metadata: ObjectMeta;
  spec: IsolationPolicySpec;
  status?: IsolationPolicyStatus;
}

/** Written by the policy-status controller (src/k8s/controllers/policy-status-reconcile.ts). */
export interface IsolationPolicyStatus {
  observedGeneration?: number;
  matchedPods?: number;
  matchedPodNames?: string[];
  matchedNamespaces?: number;
  matchedNamespaceNames?: string[];
  conditions?: unknown[];
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface RuntimeProfileSpec {
  /** CRI handler name configured in containerd/CRI-O (RuntimeClass.handler). */
  handler: string;
  isolation: IsolationLevel;
  /** RuntimeClass.overhead: resources the runtime itself uses per pod (VMM, shim, virtiofsd). */
  overhead?: { podFixed: Record<string, string> };
  scheduling?: { nodeSelector?: Record<string, string>; tolerations?: Toleration[] };
  /** The node label that marks nodes able to run this runtime (set by the installer or Coffer's node agent). */
  nodeLabel?: { key: string; value: string };
  /** Largest pod (for VM runtimes: the pod VM) one node of this pool can host; absent = not checked. */
  capacity?: { cpu?: string; memory?: string };
  /** Where the figures come from. */
  source?: string;
}

export interface RuntimeProfile {
  apiVersion: typeof COFFER_API_VERSION;
  kind: 'RuntimeProfile';
  metadata: ObjectMeta;
  spec: RuntimeProfileSpec;
}

/** TEEs a node can attest with (the attestation service's `tee` names that fit a node). */
export const NODE_TEES = ['tpm', 'snp', 'tdx', 'az-snp-vtpm', 'az-tdx-vtpm', 'sample'] as const;
export type NodeTee = (typeof NODE_TEES)[number];
export const EAR_STATUSES = ['affirming', 'warning'] as const;
export const TAINT_EFFECTS = ['NoSchedule', 'NoExecute'] as const;

/** One measured-boot event a node's log may (allowlist) or must (reference) contain. */
export interface NodeTrustEvent {
  pcr: number;
  /** Event type name as tpm2_eventlog prints it (EV_EFI_BOOT_SERVICES_APPLICATION ...). */
  type?: string;
  /** Hex digest of the event in the quoted bank. */
  digest: string;
  /** Human label (learned events carry the event data's description). */
  description?: string;
}

/**
 * Which nodes the node-trust controller labels `coffer.dev/attested=true`, and on what evidence. A node selected by
 * several policies must satisfy every one (the strictest effect and the shortest grace apply).
 */
export interface NodeTrustPolicySpec {
  /** Nodes this policy governs; empty = every node. */
  nodeSelector?: LabelSelector;
  /** Every TEE in a node's token must be one of these; `requiredTees` must all be present (vTPM in a CVM: both). */
  allowedTees: NodeTee[];
  requiredTees?: NodeTee[];
  /** Accepted `ear.status` values per submod (default: affirming). contraindicated is never accepted. */
  allowedStatuses?: ('affirming' | 'warning')[];
  /** Accepted vendor TCB statuses where the TEE reports one (default: UpToDate). Revoked is never accepted. */
  allowedTcbStatuses?: string[];
  /** Advisory IDs that make a node untrusted. */
  forbiddenAdvisories?: string[];
  /** Reference values per TEE: measurement name (pcrsha256_7, measurement, mrtd ...) → accepted hex values. */
  referenceValues?: Record<string, Record<string, string[]>>;
  /** Measured-boot events: the node's log for the listed PCRs must be exactly these events (in order). */
  eventLog?: { pcrs: number[]; bank?: string; events: NodeTrustEvent[] };
  /** Seconds a node keeps its trust after its last token expired, and a new node may go unattested untainted. */
  gracePeriodSeconds?: number;
  /** Taint effect for an untrusted node (NoExecute evicts pods that do not tolerate it). */
  effect?: 'NoSchedule' | 'NoExecute';
  /**
   * Every TEE in the token must be bound to the node's name by the TPM enrolment registry (default true). Only an
   * enrolled TPM AK is; TEE reports alone (snp, tdx), Azure vTPMs (AK bound by the HCL report) and pins are not:
   * `false` trusts them on the node name in their runtime data alone, which root on another such node can forge.
   */
  requireEnrolledIdentity?: boolean;
}

export interface NodeTrustPolicy {
  apiVersion: typeof COFFER_API_VERSION;
  kind: 'NodeTrustPolicy';
  metadata: ObjectMeta;
  spec: NodeTrustPolicySpec;
}
