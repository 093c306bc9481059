/** The built-in resources Coffer's fake server and edge hub know by name (discovery, kinds, scope). */
export interface ResourceInfo {
  group: string; // '' for core
  version: string;
  resource: string; // plural
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  subresources?: string[];
  /** metadata.generation is kept (1 on create, +1 when anything but metadata and status changes). */
  generation?: boolean;
  /** A custom resource (served by apiextensions): list items keep apiVersion and kind, unlike built-in kinds. */
  custom?: boolean;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
export const RESOURCE_VERBS = ALL_VERBS;

export const KNOWN_RESOURCES: ResourceInfo[] = [
  { group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], subresources: ['status'] },
  { group: '', version: 'v1', resource: 'nodes', singular: 'node', kind: 'Node', namespaced: false, shortNames: ['no'], subresources: ['status'] },
  { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'] },
  { group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] },
  { group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'] },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', singular: 'lease', kind: 'Lease', namespaced: true },
  { group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true },
  { group: 'node.k8s.io', version: 'v1', resource: 'runtimeclasses', singular: 'runtimeclass', kind: 'RuntimeClass', namespaced: false },
  { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', singular: 'mutatingwebhookconfiguration', kind: 'MutatingWebhookConfiguration', namespaced: false, generation: true },
  { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', singular: 'validatingwebhookconfiguration', kind: 'ValidatingWebhookConfiguration', namespaced: false, generation: true },
  // Coffer's CRDs (src/k8s/crds/schemas.ts): custom resources, IsolationPolicy with the status subresource.
  { group: 'coffer.dev', version: 'v1alpha1', resource: 'isolationpolicies', singular: 'isolationpolicy', kind: 'IsolationPolicy', namespaced: false, shortNames: ['isopol', 'ipol'], subresources: ['status'], generation: true, custom: true },
  { group: 'coffer.dev', version: 'v1alpha1', resource: 'nodetrustpolicies', singular: 'nodetrustpolicy', kind: 'NodeTrustPolicy', namespaced: false, shortNames: ['ntp', 'ntpol'], generation: true, custom: true },
  { group: 'coffer.dev', version: 'v1alpha1', resource: 'runtimeprofiles', singular: 'runtimeprofile', kind: 'RuntimeProfile', namespaced: false, shortNames: ['rtp'], generation: true, custom: true },
];

export function apiVersionOf(r: { group: string; version: string }): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

export function findResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return KNOWN_RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}
