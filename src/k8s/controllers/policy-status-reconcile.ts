/**
 * IsolationPolicy status and namespace isolation labels, the pure part.
 * - Status: the namespaces the policy's namespaceSelector matches and the pods (not Succeeded/Failed) its
 *   selectors match, by the admission engine's own matching; counts plus bounded, sorted name lists, and
 *   observedGeneration = the generation those figures were computed for.
 * - Namespace label `coffer.dev/isolation=<level>`: set on namespaces that a confidential-vm or enclave policy
 *   selects (the strictest wins), removed when none does. The webhook configurations use it to fail closed
 *   (failurePolicy Fail) there. The controller owns this label key. Selectors are evaluated WITHOUT that label,
 *   so a policy selecting on it cannot make the controller flip it back and forth.
 */
import { ISOLATION_NS_LABEL, isolationRank, type IsolationLevel, type IsolationPolicy, type IsolationPolicyStatus } from '../crds/types.js';
import { matchesSelector } from '../admission/selector.js';
import { labelsOfNamespace } from './policies.js';

type Obj = Record<string, any>;

export const MAX_POD_NAMES = 20;
export const MAX_NAMESPACE_NAMES = 50;

export type PolicyStatusAction =
  | { kind: 'setStatus'; name: string; resourceVersion: string; status: IsolationPolicyStatus }
  | { kind: 'labelNamespace'; name: string; resourceVersion: string; value: string | null };

const finished = (pod: Obj) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

export function policyStatus(policy: IsolationPolicy, namespaces: readonly Obj[], pods: readonly Obj[]): IsolationPolicyStatus {
  const nsNames = namespaces
    .filter((ns) => matchesSelector(policy.spec.namespaceSelector, labelsOfNamespace(ns, ns.metadata.name)))
    .map((ns) => ns.metadata.name as string)
    .sort();
  const inNs = new Set(nsNames);
  const podNames = pods
    .filter((p) => inNs.has(p.metadata?.namespace) && !finished(p) && (policy.spec.podSelector === undefined || matchesSelector(policy.spec.podSelector, p.metadata?.labels)))
    .map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
    .sort();
  const status: IsolationPolicyStatus = {
    matchedNamespaces: nsNames.length,
    matchedNamespaceNames: nsNames.slice(0, MAX_NAMESPACE_NAMES),
    matchedPods: podNames.length,
    matchedPodNames: podNames.slice(0, MAX_POD_NAMES),
  };
  const gen = Number((policy.metadata as Obj).generation);
  if (Number.isFinite(gen) && gen > 0) status.observedGeneration = gen;
  return status;
}

const sameList = (a: unknown, b: unknown) => JSON.stringify(a ?? []) === JSON.stringify(b ?? []);

export function reconcilePolicyStatus(policy: IsolationPolicy, observedStatus: Obj | undefined, namespaces: readonly Obj[], pods: readonly Obj[]): PolicyStatusAction[] {
  const want = policyStatus(policy, namespaces, pods);
  const have = observedStatus ?? {};
  const same =
    have.matchedPods === want.matchedPods &&
    have.matchedNamespaces === want.matchedNamespaces &&
    have.observedGeneration === want.observedGeneration &&
    sameList(have.matchedPodNames, want.matchedPodNames) &&
    sameList(have.matchedNamespaceNames, want.matchedNamespaceNames);
  if (same) return [];
  // Keep conditions others may have written; replace the fields this controller owns.
  return [{ kind: 'setStatus', name: policy.metadata.name, resourceVersion: String((policy.metadata as Obj).resourceVersion ?? ''), status: { ...(have.conditions ? { conditions: have.conditions } : {}), ...want } }];
}

/**
 * The isolation label a namespace should carry: the strictest level of the policies selecting it, sandbox and
 * none included — the webhooks fail closed (failurePolicy Fail) for every labelled namespace.
 */
export function namespaceIsolation(ns: Obj, policies: readonly IsolationPolicy[]): IsolationLevel | undefined {
  const labels = { ...labelsOfNamespace(ns, ns.metadata.name) };
  delete labels[ISOLATION_NS_LABEL];
  let best: IsolationLevel | undefined;
  for (const p of policies) {
    if (!matchesSelector(p.spec.namespaceSelector, labels)) continue;
    if (best === undefined || isolationRank(p.spec.isolation) > isolationRank(best)) best = p.spec.isolation;
  }
  return best;
}

export function reconcileNamespaceLabel(ns: Obj, policies: readonly IsolationPolicy[]): PolicyStatusAction[] {
  const want = namespaceIsolation(ns, policies) ?? null;
  const have = ns.metadata?.labels?.[ISOLATION_NS_LABEL] ?? null;
  if (want === have) return [];
  return [{ kind: 'labelNamespace', name: ns.metadata.name, resourceVersion: ns.metadata.resourceVersion, value: want }];
}
