import { CofferError } from '../../tee/common/errors.js';
import { isolationRank, type IsolationLevel, type IsolationPolicy, type RuntimeProfile, type Toleration } from '../crds/types.js';
import { ceilMiB, ceilMilli, parseQuantity, quantitiesEqual, quantityMapsEqual } from '../quantity.js';
import { cloneJson, PatchBuilder, type PatchOp } from './json-patch.js';
import type { Container, Pod } from './pod.js';
import { matchesSelector } from './selector.js';
import { aksSandboxVmSize, type SandboxVmSize } from './sizing.js';
import type { ImageVerdicts } from './images.js';

/** Annotation and label keys Coffer reads or writes on pods. */
export const ANNOTATIONS = {
  decision: 'coffer.dev/decision',
  sandboxVm: 'coffer.dev/sandbox-vm',
  epcMiB: 'coffer.dev/epc-mib',
  kataVcpus: 'io.katacontainers.config.hypervisor.default_vcpus',
  kataMemory: 'io.katacontainers.config.hypervisor.default_memory',
} as const;

export interface AdmissionConfig {
  /** Runtime class for `sandbox` policies that name none. */
  defaultSandboxRuntimeClass: string;
  /** … and for `sandbox` policies with `sizing: aks` (AKS Pod Sandboxing). */
  aksSandboxRuntimeClass: string;
  /** Extended resource that carries SGX EPC (AKS confcom device plugin: MiB units). */
  epcResourceName: string;
  /** EPC per enclave container when the pod has no `coffer.dev/epc-mib` annotation. */
  defaultEpcMiB: number;
  /** Upper bound accepted from the annotation (the largest EPC sold today is 512 GiB per socket). */
  maxEpcMiB: number;
  /** Host directory of the quote helper socket (AKS out-of-proc attestation: /var/run/aesmd). */
  quoteHelperHostPath: string;
  /** Node label the node agent keeps on nodes whose attestation is current. */
  attestedLabel: { key: string; value: string };
}

export const DEFAULT_ADMISSION_CONFIG: AdmissionConfig = {
  defaultSandboxRuntimeClass: 'kata-qemu',
  aksSandboxRuntimeClass: 'kata-mshv-vm-isolation',
  epcResourceName: 'kubernetes.azure.com/sgx_epc_mem_in_MiB',
  // AKS's out-of-proc attestation sample requests 10 MiB of EPC.
  defaultEpcMiB: 10,
  maxEpcMiB: 512 * 1024,
  quoteHelperHostPath: '/var/run/aesmd',
  attestedLabel: { key: 'coffer.dev/attested', value: 'true' },
};

export const QUOTE_VOLUME = 'coffer-quote-helper';

/** Edge autonomy: the taints the node lifecycle controller sets when a node stops reporting. */
const AUTONOMY_TAINTS = ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'];

export interface AdmissionInput {
  pod: Pod;
  namespaceLabels: Record<string, string>;
  policies: readonly IsolationPolicy[];
  profiles: ReadonlyMap<string, RuntimeProfile>;
  config?: AdmissionConfig;
  /**
   * Image verification results per policy and image, computed (with I/O) before this pure decision by
   * verifyPodImages. A policy with spec.images and no verdict for an image denies: never admitted unverified.
   */
  images?: ImageVerdicts;
}

/** What `coffer.dev/decision` holds: stable JSON (same input → same string), so re-admission changes nothing. */
export interface DecisionExplanation {
  policy: string;
  matched: string[];
  isolation: IsolationLevel;
  enforce: 'mutate' | 'deny';
  runtimeClassName?: string;
  sandboxVm?: { vcpus: number; memoryMiB: number };
  epcMiB?: number;
  attestedNodes?: boolean;
  autonomy?: boolean;
  /** Policies whose image signature rules the pod's images satisfied (pinned by digest). */
  imagesVerifiedBy?: string[];
}

export interface Denial {
  policy: string;
  rule: string;
  message: string;
}

export interface AdmissionDecision {
  allowed: boolean;
  /** `IsolationPolicy "p" rule r: …` for the first failed rule; absent when allowed. */
  reason?: string;
  denials: Denial[];
  patch: PatchOp[];
  /** Rule that produced each patch op (parallel to `patch`). */
  patchRules: string[];
  explanation: DecisionExplanation | null;
  warnings: string[];
}

export function profileMap(profiles: readonly RuntimeProfile[]): Map<string, RuntimeProfile> {
  return new Map(profiles.map((p) => [p.metadata.name, p]));
}

/** Policies that govern a pod: namespace selector on the namespace's labels, pod selector on the pod's. */
export function matchingPolicies(policies: readonly IsolationPolicy[], nsLabels: Record<string, string>, podLabels: Record<string, string> | undefined): IsolationPolicy[] {
  return policies.filter((p) => matchesSelector(p.spec.namespaceSelector, nsLabels) && (p.spec.podSelector === undefined || matchesSelector(p.spec.podSelector, podLabels)));
}

/** Strictest isolation first; ties go to `enforce: deny`, then to the policy name (deterministic). */
function byStrictness(matched: IsolationPolicy[]): IsolationPolicy[] {
  return [...matched].sort((a, b) => {
    const r = isolationRank(b.spec.isolation) - isolationRank(a.spec.isolation);
    if (r !== 0) return r;
    if (a.spec.enforce !== b.spec.enforce) return a.spec.enforce === 'deny' ? -1 : 1;
    return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
  });
}

function allContainers(pod: Pod): { c: Container; path: (string | number)[]; kind: string }[] {
  const out: { c: Container; path: (string | number)[]; kind: string }[] = [];
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    (pod.spec?.[kind] ?? []).forEach((c, i) => out.push({ c, path: ['spec', kind, i], kind }));
  }
  return out;
}

class Denied extends Error {
  constructor(readonly denial: Denial) {
    super(denial.message);
  }
}

/**
 * The admission decision for one pod: pure (no I/O, no clock), so the webhook, `coffer admit` and tests share it.
 * Mutation and validation are the same computation: a pod satisfies its policies iff mutating it changes nothing.
 */
export function decideAdmission(input: AdmissionInput): AdmissionDecision {
  const cfg = input.config ?? DEFAULT_ADMISSION_CONFIG;
  const pod = input.pod;
  const matched = matchingPolicies(input.policies, input.namespaceLabels, pod.metadata?.labels);
  if (matched.length === 0) return { allowed: true, denials: [], patch: [], patchRules: [], explanation: null, warnings: [] };

  // The strictest level wins; the policies at that level combine: the first runtime class named (in strictness
  // order), AKS sizing if any asks for it. Enforcement and autonomy combine over every matched policy.
  const sorted = byStrictness(matched);
  const winner = sorted[0];
  const required = winner.spec.isolation;
  const atLevel = sorted.filter((p) => p.spec.isolation === required);
  const explicit = atLevel.find((p) => p.spec.runtimeClassName !== undefined)?.spec.runtimeClassName;
  const sizing = atLevel.some((p) => p.spec.sizing === 'aks') ? 'aks' : 'none';
  const enforce = matched.some((p) => p.spec.enforce === 'deny') ? 'deny' : 'mutate';
  const autonomy = matched.some((p) => p.spec.autonomy);
  const policyName = winner.metadata.name;
  const denials: Denial[] = [];
  const warnings: string[] = [];
  const deny = (rule: string, message: string, policy = policyName) => denials.push({ policy, rule, message });
  const b = new PatchBuilder(cloneJson(pod) as Record<string, unknown>);
  const explanation: DecisionExplanation = {
    policy: policyName,
    matched: matched.map((p) => p.metadata.name).sort(),
    isolation: required,
    enforce,
  };

  try {
    // --- runtime class ---------------------------------------------------------------------------------------
    let target: string | undefined =
      explicit ?? (required === 'sandbox' ? (sizing === 'aks' ? cfg.aksSandboxRuntimeClass : cfg.defaultSandboxRuntimeClass) : undefined);
    let profile: RuntimeProfile | undefined;
    if (target !== undefined) {
      profile = input.profiles.get(target);
      if (!profile) throw new Denied({ policy: policyName, rule: 'runtime-profile', message: `RuntimeProfile "${target}" does not exist, so the pod's runtime cannot be set up` });
      if (isolationRank(profile.spec.isolation) < isolationRank(required)) {
        throw new Denied({ policy: policyName, rule: 'runtime-profile', message: `RuntimeProfile "${target}" gives isolation ${profile.spec.isolation}, weaker than the required ${required}` });
      }
      const asked = pod.spec?.runtimeClassName;
      const askedProfile = asked ? input.profiles.get(asked) : undefined;
      // Without an explicit class in the policy, a pod may choose any runtime at least as strong as required.
      const acceptable = (name: string | undefined, p: RuntimeProfile | undefined) =>
        name !== undefined && (name === target || (!explicit && p !== undefined && isolationRank(p.spec.isolation) >= isolationRank(required)));
      if (asked !== undefined && acceptable(asked, askedProfile)) {
        target = asked;
        profile = askedProfile;
      } else if (asked !== undefined && enforce === 'deny') {
        const what = askedProfile ? `isolation ${askedProfile.spec.isolation}` : 'no RuntimeProfile, so unknown isolation';
        deny('runtime-class', `pod asks for runtimeClassName "${asked}" (${what}); the policy requires ${explicit ? `"${explicit}"` : `isolation ${required} or stronger`}`);
      }
      // Impossible sizing: the pod (or its sandbox VM) is larger than a node of this runtime's pool can host. When
      // neither the policy nor the pod named the class, another profile of the same isolation that fits is used;
      // denied only when none does.
      const problem = capacityProblem(profile!, pod, sizing);
      if (problem) {
        const named = explicit !== undefined || (asked !== undefined && asked === target);
        const alternatives = named ? [] : [...input.profiles.values()].filter((p) => p.metadata.name !== target && p.spec.isolation === profile!.spec.isolation).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
        const fit = alternatives.find((p) => capacityProblem(p, pod, sizing) === undefined);
        if (!fit) {
          const others = alternatives.length > 0 ? `; no other ${profile!.spec.isolation} profile fits either (${alternatives.map((p) => p.metadata.name).join(', ')})` : '';
          throw new Denied({ policy: policyName, rule: 'sizing', message: problem + others });
        }
        target = fit.metadata.name;
        profile = fit;
      }
      b.rule = 'runtime-class';
      b.set(['spec', 'runtimeClassName'], target);
      explanation.runtimeClassName = target;
    }

    // --- host access in sandboxed namespaces ----------------------------------------------------------------------
    if (isolationRank(required) >= isolationRank('sandbox')) {
      const report = (rule: string, message: string) => (enforce === 'deny' ? deny(rule, message) : warnings.push(`coffer: ${message} (IsolationPolicy ${policyName} requires ${required})`));
      if (pod.spec?.hostNetwork) report('host-network', 'hostNetwork is not allowed under isolation ' + required);
      if (pod.spec?.hostPID) report('host-pid', 'hostPID is not allowed under isolation ' + required);
      if (pod.spec?.hostIPC) report('host-ipc', 'hostIPC is not allowed under isolation ' + required);
      for (const v of pod.spec?.volumes ?? []) {
        const ours = v.name === QUOTE_VOLUME && v.hostPath?.path === cfg.quoteHelperHostPath && required === 'enclave';
        if (v.hostPath && !ours) report('host-path', `volume "${v.name}" mounts host path ${v.hostPath.path}`);
      }
      for (const { c, kind } of allContainers(pod)) {
        if (c.securityContext?.privileged) report('privileged', `${kind} "${c.name}" is privileged`);
      }
    }

    // --- scheduling that RuntimeClass admission would have added (it ran before this webhook) -------------------
    if (profile) {
      b.rule = 'runtime-overhead';
      // RuntimeClass validation rejects a pod whose overhead differs from the class's podFixed, and its mutation
      // already ran (before webhooks) for the class the pod arrived with: so write the new class's overhead.
      // Compared semantically: the API server canonicalises quantities ("1.0" → "1", "2048Mi" → "2Gi"), and a
      // textual comparison would make the validating webhook reject every correctly mutated pod.
      const podFixed = profile.spec.overhead?.podFixed;
      if (podFixed) {
        if (!quantityMapsEqual(pod.spec?.overhead, podFixed)) b.set(['spec', 'overhead'], podFixed);
      } else if (pod.spec?.overhead !== undefined) b.remove(['spec', 'overhead']);
      b.rule = 'runtime-scheduling';
      for (const [k, v] of Object.entries(profile.spec.scheduling?.nodeSelector ?? {})) {
        const have = pod.spec?.nodeSelector?.[k];
        if (have !== undefined && have !== v) {
          throw new Denied({ policy: policyName, rule: 'node-selector', message: `pod nodeSelector ${k}=${have} conflicts with RuntimeProfile "${profile.metadata.name}" (${k}=${v})` });
        }
        b.set(['spec', 'nodeSelector', k], v);
      }
      for (const t of profile.spec.scheduling?.tolerations ?? []) addToleration(b, t);
    }

    // --- AKS sandbox VM sizing ------------------------------------------------------------------------------------
    let size: SandboxVmSize | undefined;
    if (sizing === 'aks' && profile !== undefined && vmBased(profile)) {
      size = aksSandboxVmSize(pod);
      b.rule = 'sizing';
      b.set(['metadata', 'annotations', ANNOTATIONS.kataVcpus], String(size.vcpus));
      b.set(['metadata', 'annotations', ANNOTATIONS.kataMemory], String(size.memoryMiB));
      b.set(['metadata', 'annotations', ANNOTATIONS.sandboxVm], `vcpus=${size.vcpus},memoryMiB=${size.memoryMiB}`);
      explanation.sandboxVm = { vcpus: size.vcpus, memoryMiB: size.memoryMiB };
    }

    // --- enclave: EPC and the quote helper socket --------------------------------------------------------------------
    if (required === 'enclave') {
      const epc = epcMiB(pod, cfg, policyName);
      explanation.epcMiB = epc;
      b.rule = 'epc';
      (pod.spec?.containers ?? []).forEach((c, i) => {
        const lim = c.resources?.limits?.[cfg.epcResourceName];
        const req = c.resources?.requests?.[cfg.epcResourceName];
        // Extended resources cannot be overcommitted: request must equal limit. Keep a container's own figure.
        if (lim !== undefined && req !== undefined && !quantitiesEqual(lim, req)) {
          throw new Denied({ policy: policyName, rule: 'epc', message: `container "${c.name}" requests ${req} but limits ${lim} of ${cfg.epcResourceName}; extended resources need request == limit` });
        }
        const value = String(lim ?? req ?? epc);
        if (lim === undefined) b.set(['spec', 'containers', i, 'resources', 'limits', cfg.epcResourceName], value);
        if (req === undefined) b.set(['spec', 'containers', i, 'resources', 'requests', cfg.epcResourceName], value);
      });
      b.rule = 'quote-helper';
      const vols = (b.get(['spec', 'volumes']) as { name: string }[] | undefined) ?? [];
      const existing = vols.findIndex((v) => v.name === QUOTE_VOLUME);
      // type written explicitly: the API server defaults an absent type to "", and the stored pod must compare
      // equal to what we wrote. DirectoryOrCreate: the mount works even if the quote helper starts later.
      const volume = { name: QUOTE_VOLUME, hostPath: { path: cfg.quoteHelperHostPath, type: 'DirectoryOrCreate' } };
      if (existing < 0) b.append(['spec', 'volumes'], volume);
      else b.set(['spec', 'volumes', existing], volume);
      (pod.spec?.containers ?? []).forEach((c, i) => {
        const mounts = c.volumeMounts ?? [];
        if (!mounts.some((m) => m.mountPath === cfg.quoteHelperHostPath)) {
          b.append(['spec', 'containers', i, 'volumeMounts'], { name: QUOTE_VOLUME, mountPath: cfg.quoteHelperHostPath });
        }
        const env = c.env ?? [];
        const idx = env.findIndex((e) => e.name === 'SGX_AESM_ADDR');
        // SGX_AESM_ADDR=1 selects out-of-proc quoting through the aesmd socket (AKS out-of-proc attestation).
        if (idx < 0) b.append(['spec', 'containers', i, 'env'], { name: 'SGX_AESM_ADDR', value: '1' });
        else if (env[idx].value !== '1' || Object.keys(env[idx]).length !== 2) b.set(['spec', 'containers', i, 'env', idx], { name: 'SGX_AESM_ADDR', value: '1' });
      });
    }

    // --- confidential: only attested nodes ------------------------------------------------------------------------
    if (required === 'confidential-vm' || required === 'enclave') {
      b.rule = 'attested-nodes';
      requireNodeLabel(b, cfg.attestedLabel.key, cfg.attestedLabel.value);
      explanation.attestedNodes = true;
    }

    // --- edge autonomy --------------------------------------------------------------------------------------------
    if (autonomy) {
      b.rule = 'autonomy';
      for (const key of AUTONOMY_TAINTS) autonomyToleration(b, key);
      explanation.autonomy = true;
    }

    // --- image signatures: every container image verified and pinned to the digest that was verified ------------
    const imagePolicies = sorted.filter((p) => p.spec.images !== undefined);
    if (imagePolicies.length > 0) {
      b.rule = 'image-pin';
      for (const { c, path, kind: list } of allContainers(pod)) {
        const kind = list.slice(0, -1); // containers → container (messages name one container)
        const image = c.image;
        let pin: string | undefined;
        for (const p of imagePolicies) {
          const name = p.metadata.name;
          if (typeof image !== 'string' || image === '') {
            deny('image-signature', `${kind} "${c.name}" has no image`, name);
            break;
          }
          const v = input.images?.get(name)?.get(image);
          if (!v) deny('image-signature', `${kind} "${c.name}" image "${image}" was not verified (no image verifier is configured)`, name);
          else if (!v.ok) deny(v.code === 'REPOSITORY_NOT_ALLOWED' ? 'image-repository' : 'image-signature', `${kind} "${c.name}" image "${image}": ${v.message} [${v.code}]`, name);
          else if (pin !== undefined && pin !== v.pinned) deny('image-signature', `${kind} "${c.name}" image "${image}" verifies as ${pin} for one policy and ${v.pinned} for ${name}; cannot pin both`, name);
          else pin = v.pinned;
        }
        if (pin !== undefined && denials.length === 0) b.set([...path, 'image'], pin);
      }
      explanation.imagesVerifiedBy = imagePolicies.map((p) => p.metadata.name);
    }

    b.rule = 'decision';
    b.set(['metadata', 'annotations', ANNOTATIONS.decision], JSON.stringify(explanation));
  } catch (e) {
    if (e instanceof Denied) denials.push(e.denial);
    else if (e instanceof CofferError) denials.push({ policy: policyName, rule: 'input', message: e.message });
    else throw e;
  }

  if (denials.length > 0) {
    const d = denials[0];
    return { allowed: false, reason: formatDenial(d), denials, patch: [], patchRules: [], explanation, warnings };
  }
  return { allowed: true, denials: [], patch: b.ops, patchRules: b.rules, explanation, warnings };
}

/**
 * The validating side: the final pod satisfies its policies iff the mutating decision on it is allowed and
 * changes nothing. Anything still to change means mutation was skipped (failurePolicy Ignore, reordered
 * webhooks, a later webhook undoing it): reject, naming the rules that are unmet.
 */
export function validateAdmission(input: AdmissionInput): AdmissionDecision {
  const d = decideAdmission(input);
  if (!d.allowed || d.patch.length === 0) return { ...d, patch: [], patchRules: [] };
  const rules = [...new Set(d.patchRules)];
  const policy = d.explanation?.policy ?? '?';
  const denials = rules.map((rule) => ({
    policy,
    rule,
    message: `pod does not satisfy rule ${rule} (would change ${d.patch.filter((_, i) => d.patchRules[i] === rule).map((o) => o.path).join(', ')}); was the mutating webhook skipped?`,
  }));
  return { ...d, allowed: false, reason: formatDenial(denials[0]), denials, patch: [], patchRules: [] };
}

export function formatDenial(d: Denial): string {
  return `IsolationPolicy "${d.policy}" rule ${d.rule}: ${d.message}`;
}

function epcMiB(pod: Pod, cfg: AdmissionConfig, policy: string): number {
  const raw = pod.metadata?.annotations?.[ANNOTATIONS.epcMiB];
  if (raw === undefined) return cfg.defaultEpcMiB;
  if (!/^[1-9]\d{0,9}$/.test(raw) || Number(raw) > cfg.maxEpcMiB) {
    throw new Denied({ policy, rule: 'epc', message: `annotation ${ANNOTATIONS.epcMiB}="${raw}" is not a whole number of MiB in 1..${cfg.maxEpcMiB}` });
  }
  return Number(raw);
}

/** VM runtimes get AKS sizing; gVisor (runsc) is a sandbox without a VM. */
function vmBased(p: RuntimeProfile): boolean {
  return (p.spec.isolation === 'sandbox' || p.spec.isolation === 'confidential-vm') && p.spec.handler !== 'runsc';
}

/**
 * Why the pod cannot run on this profile's nodes (sandbox VM size under AKS sizing, else the pod's limits against
 * the declared per-pod capacity), or undefined when it fits or the profile declares no capacity.
 */
function capacityProblem(profile: RuntimeProfile, pod: Pod, sizing: 'aks' | 'none'): string | undefined {
  const cap = profile.spec.capacity;
  if (!cap) return undefined;
  const size = sizing === 'aks' && vmBased(profile) ? aksSandboxVmSize(pod) : undefined;
  const w = `RuntimeProfile ${profile.metadata.name}.spec.capacity`;
  const needMilli = size ? BigInt(size.vcpus) * 1000n : BigInt(aksLimitsOnly(pod).milli);
  const needMiB = size ? BigInt(size.memoryMiB) : BigInt(aksLimitsOnly(pod).mib);
  const what = size ? 'the sandbox VM needs' : 'the pod limits need';
  if (cap.cpu !== undefined && needMilli > ceilMilli(parseQuantity(cap.cpu, `${w}.cpu`))) {
    return `${what} ${Number(needMilli) / 1000} CPU, above the ${cap.cpu} CPU a "${profile.metadata.name}" node can host`;
  }
  if (cap.memory !== undefined && needMiB > ceilMiB(parseQuantity(cap.memory, `${w}.memory`))) {
    return `${what} ${needMiB} MiB of memory, above the ${cap.memory} a "${profile.metadata.name}" node can host`;
  }
  return undefined;
}

function aksLimitsOnly(pod: Pod): { milli: number; mib: number } {
  const s = aksSandboxVmSize(pod);
  return { milli: s.cpuLimitMilli, mib: s.memoryLimitMiB };
}

function addToleration(b: PatchBuilder, t: Toleration): void {
  const list = (b.get(['spec', 'tolerations']) as Toleration[] | undefined) ?? [];
  if (list.some((x) => sameToleration(x, t))) return;
  b.append(['spec', 'tolerations'], t);
}

function sameToleration(a: Toleration, b: Toleration): boolean {
  return (a.key ?? '') === (b.key ?? '') && (a.operator ?? 'Equal') === (b.operator ?? 'Equal') && (a.value ?? '') === (b.value ?? '') && (a.effect ?? '') === (b.effect ?? '') && a.tolerationSeconds === b.tolerationSeconds;
}

/**
 * Tolerate the taint forever. DefaultTolerationSeconds admission (which runs before webhooks) has usually
 * already added this toleration with tolerationSeconds: 300, so strip that bound rather than add a duplicate.
 */
function autonomyToleration(b: PatchBuilder, key: string): void {
  const list = (b.get(['spec', 'tolerations']) as Toleration[] | undefined) ?? [];
  const want: Toleration = { key, operator: 'Exists', effect: 'NoExecute' };
  let found = false;
  list.forEach((t, i) => {
    const covers = t.key === key && (t.operator ?? 'Equal') === 'Exists' && (t.effect === 'NoExecute' || !t.effect);
    if (covers) {
      found = true;
      if (t.tolerationSeconds !== undefined) b.remove(['spec', 'tolerations', i, 'tolerationSeconds']);
    }
  });
  if (!found) b.append(['spec', 'tolerations'], want);
}

interface NodeSelectorTerm {
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
  matchFields?: unknown[];
}

/**
 * Required node affinity key=value. Terms are ORed, so the expression is ANDed into every existing term (adding a
 * new term would let the pod escape through the others).
 */
function requireNodeLabel(b: PatchBuilder, key: string, value: string): void {
  const expr = { key, operator: 'In', values: [value] };
  const base = ['spec', 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution', 'nodeSelectorTerms'];
  const terms = b.get(base) as NodeSelectorTerm[] | undefined;
  if (!Array.isArray(terms) || terms.length === 0) {
    b.set(base, [{ matchExpressions: [expr] }]);
    return;
  }
  terms.forEach((t, i) => {
    const has = (t.matchExpressions ?? []).some((e) => e.key === key && e.operator === 'In' && Array.isArray(e.values) && e.values.length === 1 && e.values[0] === value);
    if (!has) b.append([...base, i, 'matchExpressions'], expr);
  });
}
