import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeSources } from '../../../src/k8s/admission/kube-sources.js';
import { decideAdmission } from '../../../src/k8s/admission/engine.js';
import { FakeListWatch } from '../support/fake-list-watch.js';
import { policy, pod } from '../support/fixtures.js';

const NS = '/api/v1/namespaces';
const POL = '/apis/coffer.dev/v1alpha1/isolationpolicies';
const PROF = '/apis/coffer.dev/v1alpha1/runtimeprofiles';

async function eventually(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('KubeSources: a failed list is not readiness (no empty cache that admits everything)', async () => {
  const kc = new KubeConfig();
  // Nothing listens on port 9 (discard): every list fails.
  kc.loadFromOptions({ clusters: [{ name: 'x', server: 'http://127.0.0.1:9', skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'x', user: 'u' }], currentContext: 'c' });
  const src = new KubeSources(kc);
  try {
    await src.start();
    assert.equal(src.ready(), false);
    assert.equal(src.namespaceLabels('default'), undefined);
  } finally {
    await src.stop();
  }
});

test('KubeSources: list then watch namespaces, policies and profiles with the real client', async () => {
  const fake = new FakeListWatch({
    [NS]: { kind: 'Namespace', apiVersion: 'v1' },
    [POL]: { kind: 'IsolationPolicy', apiVersion: 'coffer.dev/v1alpha1' },
    [PROF]: { kind: 'RuntimeProfile', apiVersion: 'coffer.dev/v1alpha1' },
  });
  const server = await fake.start();
  fake.put(NS, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { tenant: 'yes' } } });
  fake.put(POL, policy('tenants', { isolation: 'sandbox', namespaceSelector: { matchLabels: { tenant: 'yes' } } }) as never);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  const warnings: string[] = [];
  const src = new KubeSources(kc, { info: () => undefined, warn: (o, m) => warnings.push(`${m} ${JSON.stringify(o)}`), error: () => undefined });
  assert.equal(src.ready(), false);
  assert.equal(src.namespaceLabels('team'), undefined, 'not synced yet: unknown, never empty');
  try {
    await src.start();
    await eventually(() => src.ready());
    assert.deepEqual(src.namespaceLabels('team'), { tenant: 'yes', 'kubernetes.io/metadata.name': 'team' });
    assert.equal(src.namespaceLabels('ghost'), undefined);
    assert.deepEqual(src.policies().map((p) => p.metadata.name), ['tenants']);
    assert.equal(src.profiles().get('kata-qemu')?.spec.handler, 'kata-qemu', 'built-ins are present');
    assert.ok(fake.requests.some((r) => r.startsWith(`GET ${NS}?`) && r.includes('watch=true') && r.includes('resourceVersion=')));

    // Watch events: a relabelled namespace, a new profile overriding a built-in, a new and an invalid policy.
    fake.put(NS, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { tenant: 'no' } } });
    fake.put(PROF, { apiVersion: 'coffer.dev/v1alpha1', kind: 'RuntimeProfile', metadata: { name: 'kata-qemu' }, spec: { handler: 'kata-qemu', isolation: 'sandbox', capacity: { cpu: '2' } } });
    fake.put(POL, policy('edge', { isolation: 'none', autonomy: true }) as never);
    fake.put(POL, { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'broken' }, spec: { namespaceSelector: {}, isolation: 'confidential-vm' } });
    await eventually(() => src.namespaceLabels('team')?.tenant === 'no' && src.policies().length === 2 && src.profiles().get('kata-qemu')?.spec.capacity !== undefined);
    assert.deepEqual(src.policies().map((p) => p.metadata.name), ['edge', 'tenants']);
    assert.ok(warnings.some((w) => w.includes('ignoring invalid IsolationPolicy') && w.includes('broken')));
    const d = decideAdmission({ pod: pod(), namespaceLabels: src.namespaceLabels('team')!, policies: src.policies(), profiles: src.profiles() });
    assert.equal(d.explanation?.policy, 'edge');
    fake.delete(POL, 'edge');
    await eventually(() => src.policies().length === 1);
  } finally {
    await src.stop();
    await fake.close();
  }
});
