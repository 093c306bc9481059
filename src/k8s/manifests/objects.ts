import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { ValidatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { cofferCrds } from '../crds/schemas.js';
import { builtinRuntimeProfiles } from '../crds/builtin-profiles.js';
import { PATHS } from '../admission/review.js';
import type { ValuesView } from './values.js';
import { nodeGuard, serviceAccountUser } from './node-guard.js';
import { TRUST_KEY_PREFIXES, UNTRUSTED_TAINT } from '../admission/node-guard.js';

/** Anything kubernetes-models can check: every object is built through one of its classes. */
export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
  validate?(): void;
  toJSON?(): unknown;
}

/** A value the part depends on: a boolean (optionally negated) or an integer compared with a bound. */
export type Condition =
  | { path: 'certManager.enabled' | 'attestation.enabled' | 'kbs.enabled' | 'agent.enabled' | 'agent.sgx.enabled' | 'agent.attest.enabled' | 'agent.quoteHelper.enabled' | 'webhook.images.trustedRootConfigMap'; negate?: boolean; gt?: undefined; le?: undefined }
  | { path: 'attestation.replicas'; gt: number; le?: undefined; negate?: undefined }
  | { path: 'attestation.replicas'; le: number; gt?: undefined; negate?: undefined };

/** One file of the output (or a piece of it); `when`: conditions that must all hold (nested Helm `if`s). */
export interface Part {
  file: string;
  when?: Condition | Condition[];
  /** The RuntimeProfiles are Coffer's own kind (no kubernetes-models class): checked by the CRD loader instead. */
  build(v: ValuesView): ManifestObject[];
}

export const NAMES = {
  webhook: 'coffer-webhook',
  webhookTls: 'coffer-webhook-tls',
  controller: 'coffer-controller',
  attestation: 'coffer-attestation',
  attestationData: 'coffer-attestation-data',
  agent: 'coffer-agent',
  agentSgx: 'coffer-agent-sgx',
  agentAttest: 'coffer-agent-attest',
  agentTpm: 'coffer-agent-tpm',
  quoteHelper: 'coffer-quote-helper',
  kbs: 'coffer-kbs',
  kbsData: 'coffer-kbs-data',
  /** The node-trust controller's report endpoint (a Service in front of the controller's leader). */
  nodeTrust: 'coffer-node-trust',
  /** Serving certificate of attestation, kbs and node-trust: issued by the controller's webhook-ca or cert-manager. */
  servicesTls: 'coffer-services-tls',
} as const;

/** The Services the services certificate names (<name>.<ns>.svc and .svc.cluster.local). */
const SERVED = [NAMES.attestation, NAMES.kbs, NAMES.nodeTrust] as const;
const svcUrl = (v: ValuesView, name: string) => `https://${name}.${v.str('namespace')}.svc`;
const TLS_DIR = '/etc/coffer/tls';
const TPM_CA_DIR = '/etc/coffer/tpm-ca';
const ADMIN_KEYS_DIR = '/etc/coffer/admin-keys';
const AUDIT_KEY_DIR = '/etc/coffer/node-trust-audit';


import { ISOLATION_NS_LABEL } from '../crds/types.js';
export { ISOLATION_NS_LABEL };

function labels(component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'coffer', 'app.kubernetes.io/component': component, 'app.kubernetes.io/part-of': 'coffer' };
}
const selector = (component: string) => ({ 'app.kubernetes.io/name': 'coffer', 'app.kubernetes.io/component': component });

function image(v: ValuesView): string {
  return `${v.str('image.repository')}:${v.str('image.tag')}`;
}

/** Restricted Pod Security Standard: what every Coffer container runs with unless it says why not. */
const restricted: ISecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};
const podSecurity: IPodSecurityContext = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };

function container(v: ValuesView, name: string, args: string[], extra: Partial<IContainer> = {}): IContainer {
  return {
    name,
    image: image(v),
    imagePullPolicy: v.str('image.pullPolicy') as IContainer['imagePullPolicy'],
    args,
    securityContext: restricted,
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    ...extra,
  };
}

function crds(): ManifestObject[] {
  return cofferCrds().map((c) => new CustomResourceDefinition(c as never));
}

function namespace(v: ValuesView): ManifestObject[] {
  return [
    new Namespace({
      metadata: {
        name: v.str('namespace'),
        // Coffer's own pods are system components: enforce the baseline standard (the SGX DaemonSet is privileged).
        labels: { ...labels('namespace'), 'pod-security.kubernetes.io/enforce': 'privileged', 'pod-security.kubernetes.io/warn': 'restricted' },
      },
    }),
  ];
}

function serviceAccount(v: ValuesView, name: string, component: string, automount: boolean): ServiceAccount {
  return new ServiceAccount({ metadata: { name, namespace: v.str('namespace'), labels: labels(component) }, automountServiceAccountToken: automount });
}

function clusterRbac(v: ValuesView, name: string, component: string, rules: IPolicyRule[]): ManifestObject[] {
  return [
    new ClusterRole({ metadata: { name, labels: labels(component) }, rules }),
    new ClusterRoleBinding({
      metadata: { name, labels: labels(component) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: v.str('namespace') }],
    }),
  ];
}

function namespacedRbac(v: ValuesView, name: string, component: string, rules: IPolicyRule[]): ManifestObject[] {
  return [
    new Role({ metadata: { name, namespace: v.str('namespace'), labels: labels(component) }, rules }),
    new RoleBinding({
      metadata: { name, namespace: v.str('namespace'), labels: labels(component) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: v.str('namespace') }],
    }),
  ];
}

const READ = ['get', 'list', 'watch'];

/** Least privilege, per component; each rule says what it is for. */
function rbac(v: ValuesView): ManifestObject[] {
  return [
    serviceAccount(v, NAMES.webhook, 'webhook', true),
    serviceAccount(v, NAMES.controller, 'controller', true),
    ...clusterRbac(v, NAMES.webhook, 'webhook', [
      // Namespace labels feed the policies' namespaceSelectors; policies and profiles are the configuration.
      { apiGroups: [''], resources: ['namespaces'], verbs: READ },
      { apiGroups: ['coffer.dev'], resources: ['isolationpolicies', 'runtimeprofiles'], verbs: READ },
    ]),
    ...clusterRbac(v, NAMES.controller, 'controller', [
      { apiGroups: ['coffer.dev'], resources: ['isolationpolicies', 'runtimeprofiles', 'nodetrustpolicies'], verbs: READ },
      { apiGroups: ['coffer.dev'], resources: ['isolationpolicies/status'], verbs: ['get', 'update', 'patch'] },
      // Installs RuntimeClasses from RuntimeProfiles.
      { apiGroups: ['node.k8s.io'], resources: ['runtimeclasses'], verbs: [...READ, 'create', 'update', 'patch', 'delete'] },
      // Counts matched pods; labels namespaces under confidential policies (the webhooks' failurePolicy split).
      // Autonomy: adds/restores pods' node-problem tolerations (patch) and reports outages on Nodes.
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['nodes'], verbs: [...READ, 'patch'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: [...READ, 'patch'] },
      // Keeps the CA bundle of its own webhook configurations only. list/watch by name work because the
      // controller's informers send fieldSelector=metadata.name=<name> (the authorizer then sees the name).
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], resourceNames: [NAMES.webhook], verbs: [...READ, 'update', 'patch'] },
      // list: a restarted controller re-delivers the audit records its node-trust Events carry (source=coffer-node-trust).
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'list'] },
    ]),
    ...namespacedRbac(v, NAMES.controller, 'controller', [
      // Self-signed mode: writes the webhook's and the services' serving certificates (create cannot be limited by name).
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      // delete: a leftover Secret of another type is replaced (type is immutable).
      { apiGroups: [''], resources: ['secrets'], resourceNames: [NAMES.webhookTls, NAMES.servicesTls], verbs: [...READ, 'update', 'patch', 'delete'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]),
  ];
}

function webhookNamespaceSelector(v: ValuesView, governed: boolean) {
  return {
    matchExpressions: [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', v.str('namespace')] },
      { key: ISOLATION_NS_LABEL, operator: governed ? 'Exists' : 'DoesNotExist' },
    ],
  };
}

/**
 * Two entries per configuration: Fail for every namespace an IsolationPolicy selects (the controller labels each
 * with its strictest level, sandbox included: a pod there must never start unmutated or unchecked), Ignore only
 * where no policy applies (a webhook outage must not stop the rest of the cluster). kube-system and Coffer's own
 * namespace are excluded. Both time out after 5 s.
 */
function webhookEntries(v: ValuesView, path: string, mutating: boolean) {
  return [true, false].map((governed) => ({
    name: `${governed ? 'governed.' : ''}pods.coffer.dev`,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: governed ? 'Fail' : 'Ignore',
    matchPolicy: 'Equivalent',
    timeoutSeconds: v.num('webhook.timeoutSeconds'),
    namespaceSelector: webhookNamespaceSelector(v, governed),
    rules: [
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
      // kubectl debug: ephemeral containers' images are checked against spec.images like any other container's.
      { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' },
    ],
    clientConfig: { service: { namespace: v.str('namespace'), name: NAMES.webhook, path, port: 443 } },
    ...(mutating ? { reinvocationPolicy: 'IfNeeded' } : {}),
  }));
}

function webhookConfigurations(v: ValuesView, certManager: boolean): ManifestObject[] {
  const annotations = certManager ? { 'cert-manager.io/inject-ca-from': `${v.str('namespace')}/${NAMES.webhook}` } : undefined;
  const metadata = { name: NAMES.webhook, labels: labels('webhook'), ...(annotations ? { annotations } : {}) };
  return [
    new MutatingWebhookConfiguration({ metadata, webhooks: webhookEntries(v, PATHS.mutate, true) as never }),
    new ValidatingWebhookConfiguration({ metadata, webhooks: [...webhookEntries(v, PATHS.validate, false), nodeGuardEntry(v)] as never }),
  ];
}

/**
 * The webhook half of the node trust guard (the ValidatingAdmissionPolicy in node-guard.yaml is the other):
 * called only for Node writes by someone other than the controller that touch a trust key or the untrusted
 * taint, so cordon/drain never depend on the webhook; those calls fail closed.
 */
function nodeGuardEntry(v: ValuesView) {
  const controller = serviceAccountUser(v.str('namespace'), NAMES.controller);
  const keyPred = (k: string) => TRUST_KEY_PREFIXES.map((p) => `${k}.startsWith('${p}')`).join(' || ');
  const touches = (field: 'labels' | 'annotations') =>
    `(has(object.metadata.${field}) && object.metadata.${field}.exists(k, ${keyPred('k')})) || ` +
    `(oldObject != null && has(oldObject.metadata.${field}) && oldObject.metadata.${field}.exists(k, ${keyPred('k')}))`;
  const taints = `(has(object.spec.taints) && object.spec.taints.exists(t, t.key.startsWith('${UNTRUSTED_TAINT}'))) || ` +
    `(oldObject != null && has(oldObject.spec.taints) && oldObject.spec.taints.exists(t, t.key.startsWith('${UNTRUSTED_TAINT}')))`;
  return {
    name: 'nodes.coffer.dev',
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    timeoutSeconds: v.num('webhook.timeoutSeconds'),
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['nodes'], scope: 'Cluster' }],
    matchConditions: [
      { name: 'not-the-controller', expression: `request.userInfo.username != '${controller}'` },
      { name: 'touches-trust', expression: `${touches('labels')} || ${touches('annotations')} || ${taints}` },
    ],
    clientConfig: { service: { namespace: v.str('namespace'), name: NAMES.webhook, path: PATHS.nodes, port: 443 } },
  };
}

/** Where the webhook reads the Sigstore trusted root from (webhook.images.trustedRootConfigMap). */
export const TRUSTED_ROOT = { dir: '/etc/coffer/sigstore', key: 'trusted_root.json' } as const;

/** `trustedRoot`: mount webhook.images.trustedRootConfigMap and pass --trusted-root (keyless signers verify in-cluster). */
function webhook(v: ValuesView, trustedRoot: boolean): ManifestObject[] {
  const ns = v.str('namespace');
  const args = [
    'webhook',
    '--from-cluster',
    '--cert', '/etc/coffer/tls/tls.crt',
    '--key', '/etc/coffer/tls/tls.key',
    '--port', v.text('webhook.port'),
    '--epc-resource', v.str('admission.epcResource'),
    '--epc-default-mib', v.text('admission.epcDefaultMiB'),
    '--quote-socket-dir', v.str('admission.quoteSocketDir'),
    '--node-trust-writer', serviceAccountUser(ns, NAMES.controller),
    '--node-agent', serviceAccountUser(ns, NAMES.agent),
    ...(trustedRoot ? ['--trusted-root', `${TRUSTED_ROOT.dir}/${TRUSTED_ROOT.key}`] : []),
  ];
  const probe = (path: string) => ({ httpGet: { path, port: 'https', scheme: 'HTTPS' as const }, periodSeconds: 10 });
  return [
    new Deployment({
      metadata: { name: NAMES.webhook, namespace: ns, labels: labels('webhook') },
      spec: {
        replicas: v.num('webhook.replicas'),
        selector: { matchLabels: selector('webhook') },
        template: {
          metadata: { labels: labels('webhook') },
          spec: {
            serviceAccountName: NAMES.webhook,
            securityContext: podSecurity,
            priorityClassName: 'system-cluster-critical',
            containers: [
              container(v, 'webhook', args, {
                ports: [{ name: 'https', containerPort: v.num('webhook.port'), protocol: 'TCP' }],
                readinessProbe: probe('/readyz'),
                livenessProbe: probe('/healthz'),
                resources: { requests: { cpu: v.str('webhook.cpu'), memory: v.str('webhook.memory') }, limits: { memory: v.str('webhook.memory') } },
                volumeMounts: [
                  { name: 'tls', mountPath: '/etc/coffer/tls', readOnly: true },
                  ...(trustedRoot ? [{ name: 'sigstore', mountPath: TRUSTED_ROOT.dir, readOnly: true }] : []),
                ],
              }),
            ],
            // Mounted as a directory so rotation (the Secret's ..data symlink swap) reaches the running server.
            // The trusted root's ConfigMap is not optional: a webhook told to use a root it cannot read must not start.
            volumes: [
              { name: 'tls', secret: { secretName: NAMES.webhookTls } },
              ...(trustedRoot ? [{ name: 'sigstore', configMap: { name: v.str('webhook.images.trustedRootConfigMap'), items: [{ key: TRUSTED_ROOT.key, path: TRUSTED_ROOT.key }] } }] : []),
            ],
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector('webhook') } }],
          },
        },
      },
    }),
    new Service({
      metadata: { name: NAMES.webhook, namespace: ns, labels: labels('webhook') },
      spec: { selector: selector('webhook'), ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
    }),
    new PodDisruptionBudget({
      metadata: { name: NAMES.webhook, namespace: ns, labels: labels('webhook') },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector('webhook') } },
    }),
  ];
}

/** cert-manager mode: a self-signed Issuer and the serving Certificate; cainjector fills the caBundle. */
function certManager(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  return [
    new Issuer({ metadata: { name: NAMES.webhook, namespace: ns, labels: labels('webhook') }, spec: { selfSigned: {} } }),
    new Certificate({
      metadata: { name: NAMES.webhook, namespace: ns, labels: labels('webhook') },
      spec: {
        secretName: NAMES.webhookTls,
        dnsNames: [`${NAMES.webhook}.${ns}.svc`, `${NAMES.webhook}.${ns}.svc.cluster.local`],
        issuerRef: { name: NAMES.webhook, kind: 'Issuer' },
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        duration: '2160h',
        renewBefore: '360h',
      },
    }),
    // Attestation, key broker and node-trust reports: one self-signed certificate naming the three Services;
    // cert-manager writes it as its own ca.crt too, which is what the agents and the controller trust.
    new Certificate({
      metadata: { name: NAMES.servicesTls, namespace: ns, labels: labels('controller') },
      spec: {
        secretName: NAMES.servicesTls,
        dnsNames: SERVED.flatMap((n) => [`${n}.${ns}.svc`, `${n}.${ns}.svc.cluster.local`]),
        issuerRef: { name: NAMES.webhook, kind: 'Issuer' },
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        duration: '2160h',
        renewBefore: '360h',
      },
    }),
  ];
}

/**
 * The controller. Its node-trust reconciler verifies the tokens agents post against the in-cluster attestation
 * service (over TLS, trusting the services certificate's ca.crt) and serves the report endpoint with that same
 * certificate. Only the Lease holder runs the reconcilers, so only the leader listens: the readiness probe keeps the
 * coffer-node-trust Service on the leader. In self-signed mode webhook-ca issues the services certificate itself
 * (the volume is optional: the first controller start writes the Secret the pod then mounts).
 */
function controller(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const tls = '/etc/coffer/services-tls';
  return [
    new Deployment({
      metadata: { name: NAMES.controller, namespace: ns, labels: labels('controller') },
      spec: {
        replicas: v.num('controller.replicas'),
        selector: { matchLabels: selector('controller') },
        template: {
          metadata: { labels: labels('controller') },
          spec: {
            serviceAccountName: NAMES.controller,
            securityContext: podSecurity,
            containers: [
              container(v, 'controller', [
                'controller',
                '--namespace', ns,
                '--webhook-service', NAMES.webhook,
                '--webhook-secret', NAMES.webhookTls,
                '--webhook-configuration', NAMES.webhook,
                '--serving-secret', NAMES.servicesTls,
                '--serving-services', SERVED.join(','),
                `--cert-manager=${v.text('certManager.enabled')}`,
                // Only the Lease holder reconciles, so controller.replicas > 1 is safe (standbys take over).
                '--leader-elect=true',
                '--attestation-url', svcUrl(v, NAMES.attestation),
                '--attestation-ca', `${tls}/ca.crt`,
                '--node-trust-listen', `0.0.0.0:${v.text('nodeTrust.port')}`,
                '--node-trust-tls-cert', `${tls}/tls.crt`,
                '--node-trust-tls-key', `${tls}/tls.key`,
                // Trust transitions go to the attestation service's audit log, signed with this key.
                '--node-trust-audit-key', `${AUDIT_KEY_DIR}/key.pem`,
              ], {
                ports: [{ name: 'reports', containerPort: v.num('nodeTrust.port'), protocol: 'TCP' }],
                readinessProbe: { httpGet: { path: '/readyz', port: 'reports', scheme: 'HTTPS' }, periodSeconds: 5 },
                volumeMounts: [{ name: 'services-tls', mountPath: tls, readOnly: true }, { name: 'audit-key', mountPath: AUDIT_KEY_DIR, readOnly: true }],
              }),
            ],
            volumes: [
              { name: 'services-tls', secret: { secretName: NAMES.servicesTls, optional: true } },
              // Created by the operator (like the KEK): not optional, the private half only.
              { name: 'audit-key', secret: { secretName: v.str('nodeTrust.auditKeySecret'), items: [{ key: 'key.pem', path: 'key.pem' }], defaultMode: 0o440 } },
            ],
          },
        },
      },
    }),
    new Service({
      metadata: { name: NAMES.nodeTrust, namespace: ns, labels: labels('controller') },
      spec: { selector: selector('controller'), ports: [{ name: 'https', port: 443, targetPort: 'reports', protocol: 'TCP' }] },
    }),
  ];
}

type ServeMount = 'attestation' | 'kbs';

/**
 * The args of `coffer attestation` / `coffer kbs` in a pod: on the pod IP, TLS from the services certificate, the
 * token issuer set to the in-cluster URL (what the controller and the agents use), TPM manufacturer CAs from a
 * ConfigMap, KEK from a Secret.
 */
function serveContainer(v: ValuesView, mount: ServeMount, portValue: 'attestation.port' | 'kbs.port', extra: Partial<IContainer>): IContainer {
  const name = mount === 'kbs' ? NAMES.kbs : NAMES.attestation;
  return container(
    v,
    mount,
    [
      mount, '--host', '0.0.0.0', '--port', v.text(portValue), '--data', '/var/lib/coffer', '--kek-file', '/etc/coffer/kek/kek',
      '--public-url', svcUrl(v, name), '--tls-cert', `${TLS_DIR}/tls.crt`, '--tls-key', `${TLS_DIR}/tls.key`, '--tpm-ca-dir', TPM_CA_DIR,
      // Every replica (and the key broker) trusts the one admin key set: an admin token works whichever pod answers.
      '--admin-keys', `${ADMIN_KEYS_DIR}/admin.pub`, '--token-ttl', v.str('attestation.tokenTtl'),
      ...(mount === 'attestation' ? ['--node-trust-audit-key', `${AUDIT_KEY_DIR}/public.pem`] : []),
    ],
    {
      ports: [{ name: 'https', containerPort: v.num(portValue), protocol: 'TCP' }],
      // The service listens on the pod IP (its default is loopback) and answers /healthz once the store is open.
      readinessProbe: { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 10 },
      ...extra,
      volumeMounts: [
        { name: 'data', mountPath: '/var/lib/coffer' },
        { name: 'kek', mountPath: '/etc/coffer/kek', readOnly: true },
        // A directory mount: the service reloads the certificate when the kubelet swaps the Secret's files.
        { name: 'tls', mountPath: TLS_DIR, readOnly: true },
        { name: 'tpm-ca', mountPath: TPM_CA_DIR, readOnly: true },
        { name: 'admin-keys', mountPath: ADMIN_KEYS_DIR, readOnly: true },
        ...(mount === 'attestation' ? [{ name: 'audit-key', mountPath: AUDIT_KEY_DIR, readOnly: true }] : []),
      ],
    },
  );
}

function serveVolumes(v: ValuesView, data: Record<string, unknown>, mount: ServeMount) {
  return [
    { name: 'data', ...data },
    // The key-encryption key never lives beside the data it protects: a Secret the operator creates. Not
    // optional: without it the pod does not start (no key is ever generated next to the database).
    { name: 'kek', secret: { secretName: v.str('attestation.kekSecret'), defaultMode: 0o440 } },
    { name: 'tls', secret: { secretName: NAMES.servicesTls } },
    // Not optional either: without manufacturer CAs no TPM can enrol, and --tpm-ca-dir refuses an empty directory.
    { name: 'tpm-ca', configMap: { name: v.str('attestation.tpmCaConfigMap') } },
    // Not optional: without the shared admin keys a pod would trust a key of its own, different per replica.
    { name: 'admin-keys', configMap: { name: v.str('attestation.adminKeysConfigMap'), items: [{ key: 'admin.pub', path: 'admin.pub' }] } },
    // The public half of the controller's audit key only (never key.pem).
    ...(mount === 'attestation' ? [{ name: 'audit-key', secret: { secretName: v.str('nodeTrust.auditKeySecret'), items: [{ key: 'public.pem', path: 'public.pem' }] } }] : []),
  ];
}

function servePod(v: ValuesView, sa: string, c: IContainer, volumes: unknown[]) {
  return { serviceAccountName: sa, automountServiceAccountToken: false, securityContext: podSecurity, containers: [c], volumes } as never;
}

function attestationCommon(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  return [
    serviceAccount(v, NAMES.attestation, 'attestation', false),
    new Service({
      metadata: { name: NAMES.attestation, namespace: ns, labels: labels('attestation') },
      spec: { selector: selector('attestation'), ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
    }),
  ];
}

/** One replica: SQLite on a ReadWriteOnce volume, one pod at a time. */
function attestationSingle(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const c = serveContainer(v, 'attestation', 'attestation.port', {
    // PostgreSQL when the (optional) store Secret exists; else SQLite on the data volume.
    env: [{ name: 'COFFER_STORE_URL', valueFrom: { secretKeyRef: { name: v.str('attestation.storeSecret'), key: 'url', optional: true } } }],
  });
  return [
    new Deployment({
      metadata: { name: NAMES.attestation, namespace: ns, labels: labels('attestation') },
      spec: {
        replicas: v.num('attestation.replicas'),
        // One pod at a time on the ReadWriteOnce volume (SQLite has one writer; a rolling update would start a second).
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector('attestation') },
        template: {
          metadata: { labels: labels('attestation') },
          // Resources, policies, signing keys and audit survive restarts and rescheduling.
          spec: servePod(v, NAMES.attestation, c, serveVolumes(v, { persistentVolumeClaim: { claimName: NAMES.attestationData } }, 'attestation')),
        },
      },
    }),
    new PersistentVolumeClaim({
      metadata: { name: NAMES.attestationData, namespace: ns, labels: labels('attestation') },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: v.str('attestation.storageSize') } } },
    }),
  ];
}

/**
 * Several replicas: every pod on the one PostgreSQL database the store Secret names (required now: no shared
 * SQLite), no ReadWriteOnce volume, rolling updates, spread over nodes, at most one pod down at a time.
 */
function attestationReplicated(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const c = serveContainer(v, 'attestation', 'attestation.port', {
    env: [{ name: 'COFFER_STORE_URL', valueFrom: { secretKeyRef: { name: v.str('attestation.storeSecret'), key: 'url' } } }],
  });
  const pod = servePod(v, NAMES.attestation, c, serveVolumes(v, { emptyDir: {} }, 'attestation')) as Record<string, unknown>;
  pod.topologySpreadConstraints = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector('attestation') } }];
  return [
    new Deployment({
      metadata: { name: NAMES.attestation, namespace: ns, labels: labels('attestation') },
      spec: {
        replicas: v.num('attestation.replicas'),
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
        selector: { matchLabels: selector('attestation') },
        template: { metadata: { labels: labels('attestation') }, spec: pod as never },
      },
    }),
    new PodDisruptionBudget({
      metadata: { name: NAMES.attestation, namespace: ns, labels: labels('attestation') },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector('attestation') } },
    }),
  ];
}

/** The key broker (attestation built in): one replica, SQLite on its own volume, the same KEK Secret. */
function kbs(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const c = serveContainer(v, 'kbs', 'kbs.port', {});
  return [
    serviceAccount(v, NAMES.kbs, 'kbs', false),
    new Deployment({
      metadata: { name: NAMES.kbs, namespace: ns, labels: labels('kbs') },
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector('kbs') },
        template: { metadata: { labels: labels('kbs') }, spec: servePod(v, NAMES.kbs, c, serveVolumes(v, { persistentVolumeClaim: { claimName: NAMES.kbsData } }, 'kbs')) },
      },
    }),
    new PersistentVolumeClaim({
      metadata: { name: NAMES.kbsData, namespace: ns, labels: labels('kbs') },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: v.str('kbs.storageSize') } } },
    }),
    new Service({
      metadata: { name: NAMES.kbs, namespace: ns, labels: labels('kbs') },
      spec: { selector: selector('kbs'), ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
    }),
  ];
}

function agentRbac(v: ValuesView): ManifestObject[] {
  return [
    serviceAccount(v, NAMES.agent, 'agent', true),
    ...clusterRbac(v, NAMES.agent, 'agent', [
      // TEE discovery labels (coffer.dev/tee.*, coffer.dev/runtime.*) on its own node. RBAC cannot narrow a patch
      // to label keys: the node trust guard (ValidatingAdmissionPolicy + webhook) refuses this account any other
      // label, any annotation, taint or spec change, and any node but its own. coffer.dev/attested is the controller's.
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] },
      { apiGroups: ['coffer.dev'], resources: ['runtimeprofiles'], verbs: READ },
    ]),
  ];
}

type HostPathType = 'Directory' | 'CharDevice' | 'DirectoryOrCreate' | 'Socket';
const hostPath = (name: string, path: string, type: HostPathType) => ({ name, hostPath: { path, type } });

const CRI_SOCKET = '/run/containerd/containerd.sock';
const STATS_PORT = 9464;

/**
 * On every node. `agent`: unprivileged discovery, reads host /sys and /dev and the containerd config (mounted at
 * its host path, so absolute `imports` resolve) read-only; the node name comes from the API. `stats`: the per-pod
 * exporter, root only to open the CRI socket (0660 root) and read other pods' /proc/<pid>/net/dev; no
 * capabilities, read-only everything. Scraped through the headless Service below (named port `metrics`).
 */
function agent(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const asRoot: ISecurityContext = { ...restricted, runAsNonRoot: false, runAsUser: 0 };
  return [
    ...agentRbac(v),
    new DaemonSet({
      metadata: { name: NAMES.agent, namespace: ns, labels: labels('agent') },
      spec: {
        selector: { matchLabels: selector('agent') },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
        template: {
          metadata: { labels: labels('agent') },
          spec: {
            serviceAccountName: NAMES.agent,
            securityContext: podSecurity,
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              container(v, 'agent', ['agent', '--host-sys', '/host/sys', '--host-dev', '/host/dev', '--containerd-config', '/etc/containerd/config.toml'], {
                env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
                volumeMounts: [
                  { name: 'host-sys', mountPath: '/host/sys', readOnly: true },
                  { name: 'host-dev', mountPath: '/host/dev', readOnly: true },
                  { name: 'containerd-config', mountPath: '/etc/containerd', readOnly: true },
                ],
              }),
              container(
                v,
                'stats',
                ['agent', 'stats', '--cri-endpoint', `unix://${CRI_SOCKET}`, '--listen', `0.0.0.0:${STATS_PORT}`, '--cgroup-root', '/host/sys/fs/cgroup', '--proc-root', '/host/proc'],
                {
                  securityContext: asRoot,
                  ports: [{ name: 'metrics', containerPort: STATS_PORT, protocol: 'TCP' }],
                  readinessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10 },
                  volumeMounts: [
                    { name: 'host-sys', mountPath: '/host/sys', readOnly: true },
                    { name: 'host-proc', mountPath: '/host/proc', readOnly: true },
                    { name: 'cri-socket', mountPath: CRI_SOCKET, readOnly: true },
                  ],
                },
              ),
            ],
            volumes: [
              hostPath('host-sys', '/sys', 'Directory'),
              hostPath('host-dev', '/dev', 'Directory'),
              hostPath('host-proc', '/proc', 'Directory'),
              hostPath('containerd-config', '/etc/containerd', 'Directory'),
              hostPath('cri-socket', CRI_SOCKET, 'Socket'),
            ],
          },
        },
      },
    }),
    // Headless: one endpoint per node's agent pod, the shape a Prometheus ServiceMonitor (port: metrics) selects.
    new Service({
      metadata: { name: `${NAMES.agent}-metrics`, namespace: ns, labels: { ...labels('agent'), 'coffer.dev/metrics': 'pod-stats' } },
      spec: { clusterIP: 'None', selector: selector('agent'), ports: [{ name: 'metrics', port: STATS_PORT, targetPort: 'metrics', protocol: 'TCP' }] },
    }),
  ];
}

/**
 * Only on SGX nodes (label set by the agent's discovery): the EPC device plugin, root for the kubelet's 0750
 * device-plugin directory but unprivileged; it reads the EPC size from host sysfs and probes the SGX device nodes
 * in host /dev (read-only). No quote helper container: SGX quotes need Intel's quoting enclave, which aesmd runs
 * and a Node program cannot; pods reach aesmd's socket in admission.quoteSocketDir, served by Intel's aesmd
 * DaemonSet or, on AKS, the confcom addon's SGX quote helper. `coffer agent quote-helper` is for TDX/SNP guests.
 */
function agentSgx(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  const asRoot: ISecurityContext = { ...restricted, runAsNonRoot: false, runAsUser: 0 };
  return [
    // Its own account: no API access at all (the SGX part works only with the kubelet and the host).
    serviceAccount(v, NAMES.agentSgx, 'agent-sgx', false),
    new DaemonSet({
      metadata: { name: NAMES.agentSgx, namespace: ns, labels: labels('agent-sgx') },
      spec: {
        selector: { matchLabels: selector('agent-sgx') },
        template: {
          metadata: { labels: labels('agent-sgx') },
          spec: {
            serviceAccountName: NAMES.agentSgx,
            automountServiceAccountToken: false,
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.sgx': 'true' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              container(v, 'device-plugin', ['agent', 'sgx-device-plugin', '--resource', v.str('admission.epcResource'), '--host-sys', '/host/sys', '--host-dev', '/host/dev'], {
                securityContext: asRoot,
                volumeMounts: [
                  { name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' },
                  { name: 'host-sys', mountPath: '/host/sys', readOnly: true },
                  { name: 'host-dev', mountPath: '/host/dev', readOnly: true },
                ],
              }),
            ],
            volumes: [
              hostPath('device-plugins', '/var/lib/kubelet/device-plugins', 'Directory'),
              hostPath('host-sys', '/sys', 'Directory'),
              hostPath('host-dev', '/dev', 'Directory'),
            ],
          },
        },
      },
    }),
  ];
}

const EVENT_LOG_DIR = '/sys/kernel/security';
const TPM_DEVICE = '/dev/tpmrm0';
/** The shared TPM resource (src/node/deviceplugin/tpm.ts) and where its allocation mounts the event log. */
const TPM_RESOURCE = 'coffer.dev/tpm';
const TPM_EVENT_LOG = '/run/coffer/tpm0/binary_bios_measurements';
/** uid 0 for a root-owned device node, socket or plugin directory, but nothing else: no capabilities, no privilege. */
const rootNoCaps: ISecurityContext = { ...restricted, runAsNonRoot: false, runAsUser: 0 };
const tpmUnit = { requests: { cpu: '50m', memory: '64Mi', [TPM_RESOURCE]: '1' }, limits: { memory: '256Mi', [TPM_RESOURCE]: '1' } };

/**
 * Only on TPM nodes (label from discovery): the device plugin that shares /dev/tpmrm0 as `coffer.dev/tpm` units, so
 * the attest agent and the quote helper get the device from the kubelet (device cgroup + node) instead of running
 * privileged. Root for the kubelet's 0750 device-plugin directory; host /dev and securityfs read-only, for presence
 * checks only (the kubelet, not this pod, hands the device and the event log to containers). No API access.
 */
function agentTpm(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  return [
    serviceAccount(v, NAMES.agentTpm, 'agent-tpm', false),
    new DaemonSet({
      metadata: { name: NAMES.agentTpm, namespace: ns, labels: labels('agent-tpm') },
      spec: {
        selector: { matchLabels: selector('agent-tpm') },
        template: {
          metadata: { labels: labels('agent-tpm') },
          spec: {
            serviceAccountName: NAMES.agentTpm,
            automountServiceAccountToken: false,
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.tpm': 'true' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              container(v, 'device-plugin', ['agent', 'tpm-device-plugin', '--resource', TPM_RESOURCE, '--host-dev', '/host/dev', '--host-sys', '/host/sys'], {
                securityContext: rootNoCaps,
                volumeMounts: [
                  { name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' },
                  { name: 'host-dev', mountPath: '/host/dev', readOnly: true },
                  { name: 'securityfs', mountPath: `/host${EVENT_LOG_DIR}`, readOnly: true },
                ],
              }),
            ],
            volumes: [
              hostPath('device-plugins', '/var/lib/kubelet/device-plugins', 'Directory'),
              hostPath('host-dev', '/dev', 'Directory'),
              hostPath('securityfs', EVENT_LOG_DIR, 'Directory'),
            ],
          },
        },
      },
    }),
  ];
}

/**
 * `coffer agent attest` on every TPM node (label from discovery): enrols the node's TPM (or, on an Azure-style CVM,
 * uses the HCL report; --evidence auto), then attests every nodeTrust.attestInterval and posts the token to the
 * controller. Unprivileged: the TPM and the event log come from one `coffer.dev/tpm` unit (agent-tpm's device
 * plugin), so the pod has no hostPath at all; uid 0 only because /dev/tpmrm0 and the event log are root's, every
 * capability dropped, read-only root. Its own DaemonSet with no API token (the agent pod's token may patch Nodes);
 * the services certificate's ca.crt only (never its key) as the extra CA for both HTTPS peers.
 */
function agentAttest(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  return [
    serviceAccount(v, NAMES.agentAttest, 'agent-attest', false),
    new DaemonSet({
      metadata: { name: NAMES.agentAttest, namespace: ns, labels: labels('agent-attest') },
      spec: {
        selector: { matchLabels: selector('agent-attest') },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
        template: {
          metadata: { labels: labels('agent-attest') },
          spec: {
            serviceAccountName: NAMES.agentAttest,
            automountServiceAccountToken: false,
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.tpm': 'true' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              container(
                v,
                'attest',
                [
                  'agent', 'attest',
                  '--attestation-url', svcUrl(v, NAMES.attestation),
                  '--controller-url', svcUrl(v, NAMES.nodeTrust),
                  '--tpm-device', TPM_DEVICE,
                  '--event-log', TPM_EVENT_LOG,
                  '--attest-interval', v.str('nodeTrust.attestInterval'),
                ],
                {
                  securityContext: rootNoCaps,
                  resources: tpmUnit,
                  env: [
                    { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                    // Node's fetch trusts this bundle besides the public roots: the attestation service and the
                    // controller serve the services certificate.
                    { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/coffer/services-ca/ca.crt' },
                  ],
                  volumeMounts: [{ name: 'services-ca', mountPath: '/etc/coffer/services-ca', readOnly: true }],
                },
              ),
            ],
            volumes: [{ name: 'services-ca', secret: { secretName: NAMES.servicesTls, items: [{ key: 'ca.crt', path: 'ca.crt' }] } }],
          },
        },
      },
    }),
  ];
}

/**
 * `coffer agent quote-helper` on TPM nodes: pods that the webhook gives the quote socket directory
 * (admission.quoteSocketDir, shared with aesmd's socket on SGX nodes) ask it for TPM quotes bound to their report
 * data (POST /v1/tpm/quote). The TPM from one `coffer.dev/tpm` unit, the socket directory as its only hostPath;
 * uid 0 for the root-owned device, no capabilities, no API token. (TDX/SNP guests without a TPM run it with
 * configfs-tsm: see the README; configfs is not mounted here.)
 */
function quoteHelper(v: ValuesView): ManifestObject[] {
  const ns = v.str('namespace');
  return [
    serviceAccount(v, NAMES.quoteHelper, 'quote-helper', false),
    new DaemonSet({
      metadata: { name: NAMES.quoteHelper, namespace: ns, labels: labels('quote-helper') },
      spec: {
        selector: { matchLabels: selector('quote-helper') },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
        template: {
          metadata: { labels: labels('quote-helper') },
          spec: {
            serviceAccountName: NAMES.quoteHelper,
            automountServiceAccountToken: false,
            priorityClassName: 'system-node-critical',
            nodeSelector: { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.tpm': 'true' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              container(v, 'quote-helper', ['agent', 'quote-helper', '--socket-dir', '/run/coffer/quote', '--tpm-device', TPM_DEVICE, '--event-log', TPM_EVENT_LOG], {
                securityContext: rootNoCaps,
                resources: tpmUnit,
                volumeMounts: [{ name: 'quote-socket', mountPath: '/run/coffer/quote' }],
              }),
            ],
            volumes: [hostPath('quote-socket', v.str('admission.quoteSocketDir'), 'DirectoryOrCreate')],
          },
        },
      },
    }),
  ];
}

/** Built-in RuntimeProfiles (Coffer's own kind: shaped by builtinRuntimeProfiles, checked by the CRD loader). */
function profiles(): ManifestObject[] {
  return builtinRuntimeProfiles() as unknown as ManifestObject[];
}

/** Every file of the install, in apply order. */
export const PARTS: Part[] = [
  { file: 'crds.yaml', build: () => crds() },
  { file: 'namespace.yaml', build: namespace },
  { file: 'rbac.yaml', build: rbac },
  { file: 'webhook.yaml', when: { path: 'webhook.images.trustedRootConfigMap', negate: true }, build: (v) => webhook(v, false) },
  { file: 'webhook.yaml', when: { path: 'webhook.images.trustedRootConfigMap' }, build: (v) => webhook(v, true) },
  { file: 'node-guard.yaml', build: (v) => nodeGuard(v, { controller: NAMES.controller, agent: NAMES.agent }, labels('controller')) },
  { file: 'webhook-configurations.yaml', when: { path: 'certManager.enabled', negate: true }, build: (v) => webhookConfigurations(v, false) },
  { file: 'webhook-configurations.yaml', when: { path: 'certManager.enabled' }, build: (v) => webhookConfigurations(v, true) },
  { file: 'cert-manager.yaml', when: { path: 'certManager.enabled' }, build: certManager },
  { file: 'controller.yaml', build: controller },
  { file: 'attestation.yaml', when: { path: 'attestation.enabled' }, build: attestationCommon },
  { file: 'attestation.yaml', when: [{ path: 'attestation.enabled' }, { path: 'attestation.replicas', le: 1 }], build: attestationSingle },
  { file: 'attestation.yaml', when: [{ path: 'attestation.enabled' }, { path: 'attestation.replicas', gt: 1 }], build: attestationReplicated },
  { file: 'kbs.yaml', when: { path: 'kbs.enabled' }, build: kbs },
  { file: 'agent.yaml', when: { path: 'agent.enabled' }, build: agent },
  { file: 'agent-sgx.yaml', when: { path: 'agent.sgx.enabled' }, build: agentSgx },
  { file: 'agent-tpm.yaml', when: { path: 'agent.enabled' }, build: agentTpm },
  { file: 'agent-attest.yaml', when: [{ path: 'agent.enabled' }, { path: 'agent.attest.enabled' }], build: agentAttest },
  { file: 'quote-helper.yaml', when: [{ path: 'agent.enabled' }, { path: 'agent.quoteHelper.enabled' }], build: quoteHelper },
  { file: 'runtime-profiles.yaml', build: () => profiles() },
];
