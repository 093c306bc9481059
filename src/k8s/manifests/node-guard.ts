import { ValidatingAdmissionPolicy } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy';
import { ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding';
import { AGENT_LABELS, AGENT_RUNTIME_PREFIX, NODE_NAME_EXTRA, TRUST_KEY_PREFIXES, UNTRUSTED_TAINT } from '../admission/node-guard.js';
import type { ValuesView } from './values.js';

/** Kubernetes service-account usernames of Coffer's components (what request.userInfo.username holds). */
export const serviceAccountUser = (namespace: string, name: string): string => `system:serviceaccount:${namespace}:${name}`;

export const NODE_GUARD_NAME = 'coffer-node-trust';

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const trustKey = (k: string) => TRUST_KEY_PREFIXES.map((p) => `${k}.startsWith(${q(p)})`).join(' || ');
const agentKey = (k: string) => `${k} in [${AGENT_LABELS.map(q).join(', ')}] || ${k}.startsWith(${q(AGENT_RUNTIME_PREFIX)})`;

/**
 * The CEL of the node trust guard (the webhook handler in admission/node-guard.ts enforces the same rule): for
 * anyone but the controller, the trust labels, trust annotations and the untrusted taint are the same before and
 * after (CREATE: absent); the agent changes only discovery labels, on its own node, and nothing else.
 */
export function nodeGuardCel(controllerUser: string, agentUser: string) {
  const variables = [
    { name: 'oldLabels', expression: 'oldObject == null || !has(oldObject.metadata.labels) ? {} : oldObject.metadata.labels' },
    { name: 'newLabels', expression: '!has(object.metadata.labels) ? {} : object.metadata.labels' },
    { name: 'oldAnnotations', expression: 'oldObject == null || !has(oldObject.metadata.annotations) ? {} : oldObject.metadata.annotations' },
    { name: 'newAnnotations', expression: '!has(object.metadata.annotations) ? {} : object.metadata.annotations' },
    { name: 'oldTaints', expression: 'oldObject == null || !has(oldObject.spec.taints) ? [] : oldObject.spec.taints' },
    { name: 'newTaints', expression: '!has(object.spec.taints) ? [] : object.spec.taints' },
  ];
  const same = (kind: 'Labels' | 'Annotations', pred: (k: string) => string) =>
    `variables.new${kind}.filter(k, ${pred('k')}).all(k, k in variables.old${kind} && variables.old${kind}[k] == variables.new${kind}[k]) && ` +
    `variables.old${kind}.filter(k, ${pred('k')}).all(k, k in variables.new${kind})`;
  const changed = (kind: 'Labels') =>
    `variables.new${kind}.filter(k, !(k in variables.old${kind}) || variables.old${kind}[k] != variables.new${kind}[k]).all(k, ${agentKey('k')}) && ` +
    `variables.old${kind}.filter(k, !(k in variables.new${kind})).all(k, ${agentKey('k')})`;
  const taintSel = (v: string) => `variables.${v}.filter(t, t.key.startsWith(${q(UNTRUSTED_TAINT)}))`;
  const isAgent = `request.userInfo.username == ${q(agentUser)}`;
  return {
    matchConditions: [{ name: 'not-the-controller', expression: `request.userInfo.username != ${q(controllerUser)}` }],
    variables,
    validations: [
      { expression: same('Labels', trustKey), reason: 'Forbidden', message: "only Coffer's controller may set, change or remove coffer.dev/attested*, coffer.dev/trust* and trust.coffer.dev/* node labels" },
      { expression: same('Annotations', trustKey), reason: 'Forbidden', message: "only Coffer's controller may set, change or remove coffer.dev/attested*, coffer.dev/trust* and trust.coffer.dev/* node annotations" },
      { expression: `${taintSel('oldTaints')} == ${taintSel('newTaints')}`, reason: 'Forbidden', message: `only Coffer's controller may add, change or remove the ${UNTRUSTED_TAINT} taint` },
      {
        expression: `!(${isAgent}) || (${changed('Labels')})`,
        reason: 'Forbidden', message: "Coffer's agent may change only its discovery labels (coffer.dev/tee.*, coffer.dev/runtime.*, ...)",
      },
      {
        expression: `!(${isAgent}) || (variables.oldAnnotations == variables.newAnnotations && variables.oldTaints == variables.newTaints && (oldObject == null || object.spec == oldObject.spec))`,
        reason: 'Forbidden', message: "Coffer's agent may not change node annotations, taints or spec",
      },
      {
        expression: `!(${isAgent}) || !(${q(NODE_NAME_EXTRA)} in request.userInfo.extra) || request.userInfo.extra[${q(NODE_NAME_EXTRA)}][0] == object.metadata.name`,
        reason: 'Forbidden', message: "Coffer's agent may change only the node its pod runs on",
      },
    ],
  };
}

/** ValidatingAdmissionPolicy + binding (admissionregistration.k8s.io/v1, Kubernetes ≥ 1.30) on Node CREATE/UPDATE. */
export function nodeGuard(v: ValuesView, names: { controller: string; agent: string }, labels: Record<string, string>) {
  const ns = v.str('namespace');
  const cel = nodeGuardCel(serviceAccountUser(ns, names.controller), serviceAccountUser(ns, names.agent));
  return [
    new ValidatingAdmissionPolicy({
      metadata: { name: NODE_GUARD_NAME, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['nodes'] }] },
        ...cel,
      } as never,
    }),
    new ValidatingAdmissionPolicyBinding({
      metadata: { name: NODE_GUARD_NAME, labels },
      spec: { policyName: NODE_GUARD_NAME, validationActions: ['Deny'] },
    }),
  ];
}
