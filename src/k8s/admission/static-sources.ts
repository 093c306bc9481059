import type { IsolationPolicy, RuntimeProfile } from '../crds/types.js';
import { namespaceLabels } from './inputs.js';
import type { AdmissionSources } from './server.js';

/**
 * Sources fixed at start-up (from files): the webhook outside a cluster, tests and the benchmark. Namespaces not
 * listed are seen with only their kubernetes.io/metadata.name label, as the API server would label a fresh one.
 */
export class StaticSources implements AdmissionSources {
  private readonly ns: Map<string, Record<string, string>>;
  constructor(
    private readonly policyList: readonly IsolationPolicy[],
    private readonly profileMap: ReadonlyMap<string, RuntimeProfile>,
    namespaces: { metadata: { name: string; labels?: Record<string, string> } }[] = [],
    private readonly unknownNamespaces: 'name-only' | 'unknown' = 'name-only',
  ) {
    this.ns = new Map(namespaces.map((n) => [n.metadata.name, namespaceLabels(n, n.metadata.name)]));
  }

  policies(): readonly IsolationPolicy[] {
    return this.policyList;
  }

  profiles(): ReadonlyMap<string, RuntimeProfile> {
    return this.profileMap;
  }

  namespaceLabels(name: string): Record<string, string> | undefined {
    const known = this.ns.get(name);
    if (known) return known;
    return this.unknownNamespaces === 'name-only' ? { 'kubernetes.io/metadata.name': name } : undefined;
  }
}
