import { checkIsolationPolicy } from '../crds/load.js';
import { COFFER_API_VERSION, type IsolationPolicy } from '../crds/types.js';
import { namespaceLabels } from '../admission/inputs.js';
import { matchingPolicies } from '../admission/engine.js';

type Obj = Record<string, any>;

/**
 * IsolationPolicy objects as the admission engine sees them (checked and defaulted by the CRD loader), sorted by
 * name; objects the loader rejects are reported through `onInvalid` and skipped, as the webhook skips them.
 */
export function effectivePolicies(objects: readonly unknown[], onInvalid: (name: string, err: Error) => void = () => {}): IsolationPolicy[] {
  const out: IsolationPolicy[] = [];
  for (const o of objects) {
    try {
      out.push(checkIsolationPolicy({ apiVersion: COFFER_API_VERSION, kind: 'IsolationPolicy', ...(o as Obj) }));
    } catch (e) {
      onInvalid(String((o as Obj)?.metadata?.name ?? '?'), e as Error);
    }
  }
  return out.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

/** Labels a namespace's selectors see (kubernetes.io/metadata.name included, as the API server sets it). */
export function labelsOfNamespace(ns: Obj | undefined, name: string): Record<string, string> {
  return namespaceLabels(ns, name);
}

/**
 * Whether a pod is autonomous by policy: some IsolationPolicy with `autonomy: true` selects it, by exactly the
 * admission engine's matching (namespace selector on its namespace's labels, optional pod selector).
 */
export function autonomousByPolicy(policies: readonly IsolationPolicy[], nsLabels: Record<string, string> | undefined, podLabels: Record<string, string> | undefined): boolean {
  if (!nsLabels) return false;
  return matchingPolicies(policies.filter((p) => p.spec.autonomy), nsLabels, podLabels).length > 0;
}
