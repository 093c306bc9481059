import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIsolationPolicy } from '../../../src/k8s/crds/load.js';
import { MAX_POD_NAMES, namespaceIsolation, reconcileNamespaceLabel, reconcilePolicyStatus } from '../../../src/k8s/controllers/policy-status-reconcile.js';

const pol = (name: string, spec: Record<string, unknown>, generation = 3) =>
  checkIsolationPolicy({ apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name, generation, resourceVersion: '7' }, spec });
const ns = (name: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels, resourceVersion: '1' } });
const pod = (namespace: string, name: string, phase = 'Running') => ({ metadata: { namespace, name, labels: { app: name } }, status: { phase } });

test('status: bounded sorted names, counts, observedGeneration; idempotent; conditions kept', () => {
  const p = pol('all', { namespaceSelector: {}, isolation: 'sandbox' });
  const pods = Array.from({ length: 30 }, (_, i) => pod('a', `p-${String(i).padStart(2, '0')}`));
  pods.push(pod('a', 'done', 'Succeeded'));
  const [a] = reconcilePolicyStatus(p, { conditions: [{ type: 'X' }] }, [ns('b'), ns('a')], pods);
  assert.equal(a.kind, 'setStatus');
  if (a.kind !== 'setStatus') return;
  assert.equal(a.resourceVersion, '7');
  assert.equal(a.status.matchedPods, 30);
  assert.equal(a.status.matchedPodNames!.length, MAX_POD_NAMES);
  assert.equal(a.status.matchedPodNames![0], 'a/p-00');
  assert.deepEqual(a.status.matchedNamespaceNames, ['a', 'b']);
  assert.equal(a.status.observedGeneration, 3);
  assert.deepEqual(a.status.conditions, [{ type: 'X' }]);
  assert.deepEqual(reconcilePolicyStatus(p, a.status, [ns('b'), ns('a')], pods), [], 'same input, nothing to write');
});

test('namespace label: strictest level of any selecting policy (sandbox included), kubernetes.io/metadata.name visible, own label ignored', () => {
  const policies = [
    pol('cvm', { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['x'] }] }, isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-snp' }),
    pol('enc', { namespaceSelector: { matchLabels: { sgx: 'y' } }, isolation: 'enclave' }),
    pol('sb', { namespaceSelector: { matchLabels: { tier: 'edge' } }, isolation: 'sandbox' }),
    pol('self', { namespaceSelector: { matchLabels: { 'coffer.dev/isolation': 'enclave' } }, isolation: 'enclave' }),
  ];
  assert.equal(namespaceIsolation(ns('x'), policies), 'confidential-vm');
  assert.equal(namespaceIsolation(ns('x', { sgx: 'y' }), policies), 'enclave');
  assert.equal(namespaceIsolation(ns('z'), policies), undefined);
  // A sandbox policy governs its namespaces too: the webhooks must fail closed there as well.
  assert.equal(namespaceIsolation(ns('e', { tier: 'edge' }), policies), 'sandbox');
  assert.equal(namespaceIsolation(ns('x', { tier: 'edge' }), policies), 'confidential-vm');
  assert.deepEqual(reconcileNamespaceLabel(ns('e', { tier: 'edge' }), policies), [{ kind: 'labelNamespace', name: 'e', resourceVersion: '1', value: 'sandbox' }]);
  assert.equal(namespaceIsolation(ns('z', { 'coffer.dev/isolation': 'enclave' }), policies), undefined, 'a policy keyed on the label itself does not hold it in place');
  assert.deepEqual(reconcileNamespaceLabel(ns('z', { 'coffer.dev/isolation': 'enclave' }), policies), [{ kind: 'labelNamespace', name: 'z', resourceVersion: '1', value: null }]);
  assert.deepEqual(reconcileNamespaceLabel(ns('x', { 'coffer.dev/isolation': 'confidential-vm' }), policies), []);
});
