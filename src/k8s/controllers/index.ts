import type { ControllerFactory } from './types.js';

/**
 * Every controller `coffer controller` can run; add new ones here. Loaded on demand so that other `coffer`
 * commands (the edge hub on a small node) never pay for the Kubernetes client library.
 */
export interface ControllerEntry {
  name: string;
  description: string;
  load(): Promise<ControllerFactory<any>>;
}

export const CONTROLLERS: ControllerEntry[] = [
  {
    name: 'autonomy',
    description: 'pods on nodes annotated coffer.dev/autonomy=true, or selected by an IsolationPolicy with autonomy: true, keep unreachable/not-ready tolerations without tolerationSeconds; outages reported on the Node',
    load: async () => (await import('./autonomy.js')).autonomyController,
  },
  {
    name: 'runtimeclass',
    description: 'installs node.k8s.io/v1 RuntimeClasses from RuntimeProfiles (built-ins too), labelled app.kubernetes.io/managed-by=coffer; removes those whose profile is gone',
    load: async () => (await import('./runtimeclass.js')).runtimeClassController,
  },
  {
    name: 'webhook-ca',
    description: "self-signed CA + serving certificate in the webhook Secret, caBundle of the webhook configurations, rotation (off with --cert-manager=true)",
    load: async () => (await import('./webhook-ca.js')).webhookCaController,
  },
  {
    name: 'node-trust',
    description: 'verifies the EAR tokens node agents post (POST /v1/node-trust/reports) against the attestation service JWKS, appraises them against NodeTrustPolicies, sets coffer.dev/attested or taints coffer.dev/untrusted; needs --attestation-url',
    load: async () => (await import('./node-trust.js')).nodeTrustController,
  },
  {
    name: 'policy-status',
    description: 'IsolationPolicy status (matched pods and namespaces, observedGeneration); coffer.dev/isolation label on namespaces under confidential policies',
    load: async () => (await import('./policy-status.js')).policyStatusController,
  },
];
