/**
 * Node autonomy, the pure part: given the observed nodes and pods, which changes keep autonomous nodes' pods from
 * being evicted during an outage, and how each node's autonomy episodes are reported.
 *
 * - A node annotated `coffer.dev/autonomy=true` is autonomous. Its running pods (except DaemonSet and mirror pods,
 *   which tolerate node problems already — OpenYurt's pod binding controller skips them too) get the
 *   `node.kubernetes.io/unreachable` and `node.kubernetes.io/not-ready` NoExecute tolerations WITHOUT
 *   tolerationSeconds, so the taint manager never evicts them. The pod API allows exactly this on update:
 *   tolerations may be added and an existing toleration's tolerationSeconds may change, nothing else
 *   (ValidatePodUpdate / validateOnlyAddedTolerations). Pods we changed are marked
 *   `coffer.dev/autonomy-tolerations=managed`; when the node stops being autonomous, those pods get the
 *   DefaultTolerationSeconds admission default (300 s) back and lose the mark.
 * - Pods are also autonomous wherever they run when their namespace is listed in `--autonomous-namespaces` or an
 *   IsolationPolicy with `autonomy: true` selects them (the admission engine's matching, so the controller and the
 *   webhook agree on which pods that is); the webhook sets the same tolerations at creation, the controller
 *   covers pods that existed before the policy.
 * - Status is reported on the Node as annotations (level-triggered, readable with kubectl, no event TTL):
 *   `coffer.dev/autonomous-since` while an autonomous node is not Ready (value: the Ready condition's
 *   lastTransitionTime, i.e. when it went down); when it is Ready again that annotation is replaced by
 *   `coffer.dev/autonomy-last-outage` = "<since>/<recovered>" (RFC 3339 interval) and
 *   `coffer.dev/autonomy-recovered-at` = the Ready condition's lastTransitionTime.
 * Times come from the node's own conditions, so reconcile needs no clock and is idempotent.
 */
import type { IsolationPolicy } from '../crds/types.js';
import { autonomousByPolicy } from './policies.js';

type Obj = Record<string, any>;

export const AUTONOMY_ANNOTATION = 'coffer.dev/autonomy';
export const AUTONOMOUS_SINCE = 'coffer.dev/autonomous-since';
export const RECOVERED_AT = 'coffer.dev/autonomy-recovered-at';
export const LAST_OUTAGE = 'coffer.dev/autonomy-last-outage';
export const MANAGED_MARK = 'coffer.dev/autonomy-tolerations';
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const DEFAULT_TOLERATION_SECONDS = 300;

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export type AutonomyAction =
  | { kind: 'setPodTolerations'; namespace: string; name: string; resourceVersion: string; tolerations: Toleration[]; mark: 'managed' | null }
  | { kind: 'annotateNode'; name: string; resourceVersion: string; annotations: Record<string, string | null> };

export interface AutonomyDesired {
  /** Namespaces whose pods are autonomous wherever they run (`--autonomous-namespaces`). */
  autonomousNamespaces?: ReadonlySet<string>;
  /** IsolationPolicies: pods one with `autonomy: true` selects are autonomous wherever they run. */
  policies?: readonly IsolationPolicy[];
  /** Labels of a namespace as selectors see them; undefined for a namespace not (yet) known. */
  namespaceLabels?: (namespace: string) => Record<string, string> | undefined;
}

/** Whether a pod is autonomous regardless of its node: named namespace, or selected by an autonomy policy. */
export function podAutonomous(pod: Obj, desired: AutonomyDesired): boolean {
  const ns = pod.metadata?.namespace;
  if (desired.autonomousNamespaces?.has(ns)) return true;
  if (!desired.policies?.length || !desired.namespaceLabels) return false;
  return autonomousByPolicy(desired.policies, desired.namespaceLabels(ns), pod.metadata?.labels);
}

export function isAutonomousNode(node: Obj): boolean {
  return node?.metadata?.annotations?.[AUTONOMY_ANNOTATION] === 'true';
}

function readyCondition(node: Obj): Obj | undefined {
  return (node?.status?.conditions ?? []).find((c: Obj) => c.type === 'Ready');
}

function skipPod(pod: Obj): boolean {
  if ((pod.metadata?.ownerReferences ?? []).some((o: Obj) => o.kind === 'DaemonSet')) return true;
  if (pod.metadata?.annotations?.['kubernetes.io/config.mirror']) return true;
  return pod.status?.phase !== 'Running';
}

/** Same toleration apart from tolerationSeconds (the API's notion of "modifying" one). */
function sameToleration(a: Toleration, key: string): boolean {
  return (a.key ?? '') === key && (a.operator ?? 'Equal') === 'Exists' && (a.effect ?? '') === 'NoExecute' && (a.value ?? '') === '';
}

/**
 * The pod's tolerations with both node-problem tolerations set to `seconds` (undefined = forever), keeping every
 * other toleration and the order; returns undefined when nothing would change.
 */
export function withNodeProblemTolerations(tolerations: Toleration[] | undefined, seconds: number | undefined): Toleration[] | undefined {
  const out = (tolerations ?? []).map((t) => ({ ...t }));
  let changed = false;
  for (const key of [TAINT_NOT_READY, TAINT_UNREACHABLE]) {
    const i = out.findIndex((t) => sameToleration(t, key));
    const want: Toleration = { key, operator: 'Exists', effect: 'NoExecute', ...(seconds === undefined ? {} : { tolerationSeconds: seconds }) };
    if (i < 0) {
      out.push(want);
      changed = true;
    } else if (out[i].tolerationSeconds !== want.tolerationSeconds) {
      out[i] = { ...out[i], tolerationSeconds: seconds };
      if (seconds === undefined) delete out[i].tolerationSeconds;
      changed = true;
    }
  }
  return changed ? out : undefined;
}

function nodeStatusActions(node: Obj, autonomous: boolean): AutonomyAction[] {
  const ann: Record<string, string> = node.metadata?.annotations ?? {};
  const since = ann[AUTONOMOUS_SINCE];
  const ready = readyCondition(node);
  const isReady = ready?.status === 'True';
  const changes: Record<string, string | null> = {};
  if (autonomous && !isReady) {
    const at = ready?.lastTransitionTime ?? 'unknown';
    if (since !== at) changes[AUTONOMOUS_SINCE] = at;
  } else if (since !== undefined) {
    changes[AUTONOMOUS_SINCE] = null;
    if (autonomous && isReady) {
      const back = ready?.lastTransitionTime ?? 'unknown';
      changes[RECOVERED_AT] = back;
      changes[LAST_OUTAGE] = `${since}/${back}`;
    }
  }
  if (Object.keys(changes).length === 0) return [];
  return [{ kind: 'annotateNode', name: node.metadata.name, resourceVersion: node.metadata.resourceVersion, annotations: changes }];
}

/** Level-triggered reconcile of one node and the pods bound to it: (desired, observed) → actions. */
export function reconcileNode(node: Obj | undefined, pods: Obj[], desired: AutonomyDesired = {}): AutonomyAction[] {
  const actions: AutonomyAction[] = [];
  const nodeAutonomous = node !== undefined && isAutonomousNode(node);
  if (node) actions.push(...nodeStatusActions(node, nodeAutonomous));
  for (const pod of pods) {
    if (skipPod(pod)) continue;
    const autonomous = nodeAutonomous || podAutonomous(pod, desired);
    const managed = pod.metadata?.annotations?.[MANAGED_MARK] === 'managed';
    const ref = { namespace: pod.metadata.namespace, name: pod.metadata.name, resourceVersion: pod.metadata.resourceVersion };
    if (autonomous) {
      // Marked only when we change something: tolerations a user set by hand are never "restored" later.
      const t = withNodeProblemTolerations(pod.spec?.tolerations, undefined);
      if (t) actions.push({ kind: 'setPodTolerations', ...ref, tolerations: t, mark: 'managed' });
    } else if (managed) {
      const t = withNodeProblemTolerations(pod.spec?.tolerations, DEFAULT_TOLERATION_SECONDS);
      actions.push({ kind: 'setPodTolerations', ...ref, tolerations: t ?? pod.spec?.tolerations ?? [], mark: null });
    }
  }
  return actions;
}
