import type { IsolationPolicy, IsolationPolicySpec } from '../../../src/k8s/crds/types.js';
import type { Pod } from '../../../src/k8s/admission/pod.js';

export function policy(name: string, spec: Partial<IsolationPolicySpec> & Pick<IsolationPolicySpec, 'isolation'>): IsolationPolicy {
  return {
    apiVersion: 'coffer.dev/v1alpha1',
    kind: 'IsolationPolicy',
    metadata: { name },
    spec: { namespaceSelector: {}, enforce: 'mutate', sizing: 'none', autonomy: false, ...spec },
  };
}

export function pod(spec: Partial<NonNullable<Pod['spec']>> = {}, metadata: Pod['metadata'] = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'team', ...metadata },
    spec: { containers: [{ name: 'app', image: 'nginx' }], ...spec },
  };
}
