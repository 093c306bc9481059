// IsolationPolicy status and namespace isolation labels against the fake kube-apiserver; cross-checked with the
// webhook configurations' namespaceSelectors from `coffer manifests` and read back with kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { makePod } from '../../support/k8s-objects.js';
import { waitFor } from '../../support/wait.js';
import { policyStatusController } from '../../../src/k8s/controllers/policy-status.js';
import type { RunningController } from '../../../src/k8s/controllers/types.js';
import { matchesSelector } from '../../../src/k8s/admission/selector.js';
import { buildManifests } from '../../../src/k8s/manifests/render.js';

const run = promisify(execFile);
let fake: FakeApiServer;
let ctl: RunningController;
const logs: { event: string; detail: Record<string, any> }[] = [];
const CD = 'coffer.dev';
const pol = (name: string) => fake.store.get(`${CD}/isolationpolicies`, name)!;
const ns = (name: string) => fake.store.get('/namespaces', name)!;
const label = (name: string) => ns(name).metadata.labels?.['coffer.dev/isolation'];

function policy(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name }, spec: { enforce: 'mutate', sizing: 'none', autonomy: false, ...spec } };
}
async function api(method: string, path: string, body?: unknown, ctype = 'application/json') {
  const r = await fetch(fake.url + path, { method, headers: { 'content-type': ctype }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as any };
}

before(async () => {
  fake = await startFakeApiServer();
  const nsObj = (name: string, labels: Record<string, string>) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  fake.put('namespaces', nsObj('secure', { tier: 'secure' }));
  fake.put('namespaces', nsObj('vault', { tier: 'secure', sgx: 'yes' }));
  fake.put('namespaces', nsObj('plain', {}));
  fake.put('namespaces', nsObj('stale', { 'coffer.dev/isolation': 'enclave' }));
  fake.put('pods', makePod('secure', 'api-0', 'n1'));
  fake.put('pods', makePod('secure', 'db-0', 'n1'));
  const done = makePod('secure', 'job-0', 'n1');
  done.status.phase = 'Succeeded';
  fake.put('pods', done);
  fake.put('pods', makePod('vault', 'kms-0', 'n1'));
  fake.put('pods', makePod('vault', 'web-0', 'n1'));
  fake.put('pods', makePod('plain', 'web-0', 'n1'));
  fake.put('isolationpolicies', policy('conf', { namespaceSelector: { matchLabels: { tier: 'secure' } }, isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx' }), CD);
  fake.put('isolationpolicies', policy('sgx', { namespaceSelector: { matchLabels: { sgx: 'yes' } }, podSelector: { matchLabels: { app: 'kms' } }, isolation: 'enclave' }), CD);
  fake.put('isolationpolicies', policy('sandboxed', { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['plain'] }] }, isolation: 'sandbox' }), CD);
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await policyStatusController.start({ kubeConfig: kc, log: (event, detail) => logs.push({ event, detail }) }, {});
});

after(async () => {
  await ctl?.stop();
  await fake?.close();
});

test('status: matched namespaces and pods, observedGeneration', async () => {
  await waitFor('statuses', () => ['conf', 'sgx', 'sandboxed'].every((n) => pol(n).status?.observedGeneration === 1));
  assert.deepEqual(pol('conf').status, {
    matchedNamespaces: 2,
    matchedNamespaceNames: ['secure', 'vault'],
    matchedPods: 4,
    matchedPodNames: ['secure/api-0', 'secure/db-0', 'vault/kms-0', 'vault/web-0'],
    observedGeneration: 1,
  });
  assert.deepEqual(pol('sgx').status.matchedPodNames, ['vault/kms-0'], 'podSelector honoured');
  assert.equal(pol('sandboxed').status.matchedPods, 1);
  assert.equal(pol('conf').metadata.generation, 1, 'status writes leave the generation alone');
  const { stdout } = await run('kubectl', ['--server', fake.url, 'get', 'isolationpolicies', 'conf', '--no-headers']);
  assert.match(stdout, /^conf\s+confidential-vm\s+mutate\s+kata-qemu-tdx\s+4\s+\d+s/);
});

test('namespace labels: strictest level of any policy (sandbox too); removed where no policy asks; the webhook Fail entry selects them', async () => {
  await waitFor('labels', () => label('secure') === 'confidential-vm' && label('vault') === 'enclave' && label('stale') === undefined && label('plain') === 'sandbox');
  const mwc = (buildManifests().flatMap((f) => f.objects) as any[]).find((o) => o.kind === 'MutatingWebhookConfiguration');
  const entry = (name: string) => mwc.webhooks.find((w: any) => w.name === name);
  for (const n of ['secure', 'vault', 'plain']) {
    assert.ok(matchesSelector(entry('governed.pods.coffer.dev').namespaceSelector, ns(n).metadata.labels), `${n}: failurePolicy Fail`);
    assert.ok(!matchesSelector(entry('pods.coffer.dev').namespaceSelector, ns(n).metadata.labels), `${n}: not the Ignore entry`);
  }
  assert.ok(matchesSelector(entry('pods.coffer.dev').namespaceSelector, ns('stale').metadata.labels), 'stale (no policy): Ignore');
  assert.ok(!matchesSelector(entry('governed.pods.coffer.dev').namespaceSelector, ns('stale').metadata.labels), 'stale: not Fail');
  assert.equal(entry('governed.pods.coffer.dev').failurePolicy, 'Fail');
});

test('changes: new pod counted, selector edit bumps generation and moves labels, 409 on the status write retried fresh', async () => {
  fake.put('pods', makePod('secure', 'api-1', 'n1'));
  await waitFor('pod counted', () => pol('conf').status.matchedPods === 5);
  let raced = false;
  const seen: string[] = [];
  fake.beforeRequest = (method, url) => {
    if (!url.startsWith('/apis/coffer.dev/v1alpha1/isolationpolicies/conf')) return;
    seen.push(`${method} ${url.endsWith('/status') ? 'status' : 'main'}`);
    if (method === 'PATCH' && !raced) {
      raced = true;
      const p = pol('conf');
      fake.put('isolationpolicies', { ...p, metadata: { ...p.metadata, labels: { owner: 'sec' } } }, CD);
    }
  };
  try {
    const cur = (await api('GET', '/apis/coffer.dev/v1alpha1/isolationpolicies/conf')).body;
    const r = await api('PUT', '/apis/coffer.dev/v1alpha1/isolationpolicies/conf', { ...cur, spec: { ...cur.spec, namespaceSelector: { matchLabels: { sgx: 'yes' } } } });
    assert.equal(r.status, 200);
    assert.equal(r.body.metadata.generation, 2);
    await waitFor('observed generation 2', () => pol('conf').status?.observedGeneration === 2 && pol('conf').status.matchedNamespaces === 1);
    const first = seen.indexOf('PATCH status');
    assert.deepEqual(seen.slice(first, first + 3), ['PATCH status', 'GET main', 'PATCH status'], seen.join(', '));
    assert.ok(logs.some((l) => l.event === 'policy_status_conflict'));
  } finally {
    fake.beforeRequest = undefined;
  }
  await waitFor('secure label removed', () => label('secure') === undefined && label('vault') === 'enclave');
  // Deleting the enclave policy leaves vault under the confidential-vm policy only.
  assert.equal((await api('DELETE', '/apis/coffer.dev/v1alpha1/isolationpolicies/sgx')).status, 200);
  await waitFor('vault relabelled', () => label('vault') === 'confidential-vm');
});

test('a policy selecting on the isolation label itself does not make the label flap', async () => {
  fake.put('namespaces', { metadata: { name: 'loop', labels: { loop: 'y' } }, spec: {}, status: { phase: 'Active' } });
  fake.put('isolationpolicies', policy('selfref', { namespaceSelector: { matchLabels: { loop: 'y' }, matchExpressions: [{ key: 'coffer.dev/isolation', operator: 'DoesNotExist' }] }, isolation: 'enclave' }), CD);
  await waitFor('loop labelled', () => label('loop') === 'enclave');
  await ctl.settled!();
  const writes = () => logs.filter((l) => l.event === 'namespace_isolation_label' && l.detail.namespace === 'loop').length;
  const n = writes();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(writes(), n);
  assert.equal(label('loop'), 'enclave');
});

test('410 after a watch outage: the pod relist corrects the count', async () => {
  const before = pol('sandboxed').status.matchedPods;
  fake.store.dropWatchers();
  fake.remove('pods', 'plain', 'web-0');
  fake.put('configmaps', { metadata: { name: 'bump', namespace: 'default' }, data: {} });
  fake.store.compact();
  await waitFor('count corrected', () => pol('sandboxed').status.matchedPods === before - 1 && pol('sandboxed').status.matchedPodNames.length === 0);
});
