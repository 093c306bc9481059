// Namespace-level autonomy: IsolationPolicies with `autonomy: true` select pods (the admission engine's matching)
// that keep the node-problem tolerations without tolerationSeconds, on any node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { makeNode, makePod } from '../../support/k8s-objects.js';
import { waitFor } from '../../support/wait.js';
import { autonomyController } from '../../../src/k8s/controllers/autonomy.js';
import { MANAGED_MARK, podAutonomous } from '../../../src/k8s/controllers/autonomy-reconcile.js';
import type { RunningController } from '../../../src/k8s/controllers/types.js';
import { checkIsolationPolicy } from '../../../src/k8s/crds/load.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';
import { decideAdmission, profileMap } from '../../../src/k8s/admission/engine.js';

let fake: FakeApiServer;
let ctl: RunningController;
const pod = (ns: string, name: string) => fake.store.get('/pods', `${ns}/${name}`)!;
const forever = (p: any) => ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'].every((k) => p.spec.tolerations.some((t: any) => t.key === k && t.tolerationSeconds === undefined));
const defaults = (p: any) => p.spec.tolerations.filter((t: any) => t.tolerationSeconds === 300).length === 2;

const edgePolicy = {
  apiVersion: 'coffer.dev/v1alpha1',
  kind: 'IsolationPolicy',
  metadata: { name: 'branch-offices' },
  spec: { namespaceSelector: { matchLabels: { site: 'branch' } }, podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['pos'] }] }, isolation: 'sandbox', enforce: 'mutate', sizing: 'none', autonomy: true },
};

before(async () => {
  fake = await startFakeApiServer({ namespaces: ['hq'] });
  fake.put('namespaces', { metadata: { name: 'shop-1', labels: { site: 'branch' } }, spec: {}, status: { phase: 'Active' } });
  fake.put('nodes', makeNode('cloud-1'));
  fake.put('pods', makePod('shop-1', 'pos-0', 'cloud-1'));
  fake.put('pods', makePod('shop-1', 'cache-0', 'cloud-1'));
  fake.put('pods', makePod('hq', 'pos-0', 'cloud-1'));
  fake.put('isolationpolicies', edgePolicy, 'coffer.dev');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await autonomyController.start({ kubeConfig: kc, log: () => {} }, {});
});

after(async () => {
  await ctl?.stop();
  await fake?.close();
});

test('pure: the controller and the admission engine agree on which pods are autonomous', () => {
  const policies = [checkIsolationPolicy(edgePolicy)];
  const labels = (ns: string): Record<string, string> => (ns === 'shop-1' ? { site: 'branch', 'kubernetes.io/metadata.name': ns } : { 'kubernetes.io/metadata.name': ns });
  for (const [ns, name, want] of [['shop-1', 'pos-0', true], ['shop-1', 'cache-0', false], ['hq', 'pos-0', false]] as const) {
    const p = makePod(ns, name, 'n');
    assert.equal(podAutonomous(p, { policies, namespaceLabels: labels }), want, `${ns}/${name}`);
    const d = decideAdmission({ pod: p as any, namespaceLabels: labels(ns), policies, profiles: profileMap(builtinRuntimeProfiles()) });
    assert.equal(d.explanation?.autonomy === true, want, `engine: ${ns}/${name}`);
  }
  assert.equal(podAutonomous(makePod('x', 'y', 'n'), { autonomousNamespaces: new Set(['x']) }), true);
});

test('pods an autonomy policy selects keep the tolerations forever; others untouched; policy removal restores', async () => {
  await waitFor('shop-1/pos-0 autonomous', () => forever(pod('shop-1', 'pos-0')));
  assert.equal(pod('shop-1', 'pos-0').metadata.annotations[MANAGED_MARK], 'managed');
  assert.ok(defaults(pod('shop-1', 'cache-0')), 'podSelector not matched');
  assert.ok(defaults(pod('hq', 'pos-0')), 'namespace not matched');
  // A namespace relabelled into the policy's scope is picked up.
  const hq = fake.store.get('/namespaces', 'hq')!;
  fake.put('namespaces', { ...hq, metadata: { ...hq.metadata, labels: { ...hq.metadata.labels, site: 'branch' } } });
  await waitFor('hq/pos-0 autonomous', () => forever(pod('hq', 'pos-0')));
  fake.remove('isolationpolicies', undefined, 'branch-offices', 'coffer.dev');
  await waitFor('restored', () => defaults(pod('shop-1', 'pos-0')) && defaults(pod('hq', 'pos-0')) && !pod('shop-1', 'pos-0').metadata.annotations?.[MANAGED_MARK]);
});
