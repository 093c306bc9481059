// The fake kube-apiserver's controller-facing kinds: Secrets (stringData, immutable type, tls keys), RuntimeClasses
// (immutable handler), webhook configurations and coffer.dev custom resources (generation, status subresource,
// TypeMeta in lists, CRD printer columns through kubectl).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';

const run = promisify(execFile);
let s: FakeApiServer;
before(async () => {
  s = await startFakeApiServer({ namespaces: ['apps'] });
});
after(() => s.close());

async function req(method: string, path: string, body?: unknown, ctype = 'application/json') {
  const r = await fetch(s.url + path, { method, headers: { 'content-type': ctype }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as any };
}

test('Secret: stringData becomes base64 data, type defaults and is immutable, kubernetes.io/tls needs its keys', async () => {
  const c = await req('POST', '/api/v1/namespaces/apps/secrets', { metadata: { name: 's1' }, stringData: { a: 'hello' } });
  assert.equal(c.status, 201);
  assert.deepEqual(c.body.data, { a: Buffer.from('hello').toString('base64') });
  assert.equal(c.body.type, 'Opaque');
  assert.equal(c.body.stringData, undefined);
  const t = await req('PUT', '/api/v1/namespaces/apps/secrets/s1', { ...c.body, type: 'kubernetes.io/tls' });
  assert.equal(t.status, 422);
  assert.match(t.body.message, /type: Invalid value: "kubernetes.io\/tls": field is immutable/);
  const tls = await req('POST', '/api/v1/namespaces/apps/secrets', { metadata: { name: 's2' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==' } });
  assert.equal(tls.status, 422);
  assert.equal(tls.body.details.causes[0].field, 'data[tls.key]');
  const bad = await req('POST', '/api/v1/namespaces/apps/secrets', { metadata: { name: 's3' }, data: { a: 'not base64!' } });
  assert.equal(bad.status, 400);
  const sel = await req('GET', '/api/v1/namespaces/apps/secrets?fieldSelector=type%3DOpaque');
  assert.deepEqual(sel.body.items.map((i: any) => i.metadata.name), ['s1']);
});

test('RuntimeClass: handler required, a DNS label, immutable; no generation', async () => {
  assert.equal((await req('POST', '/apis/node.k8s.io/v1/runtimeclasses', { metadata: { name: 'x' } })).status, 422);
  assert.equal((await req('POST', '/apis/node.k8s.io/v1/runtimeclasses', { metadata: { name: 'x' }, handler: 'Bad_H' })).status, 422);
  const c = await req('POST', '/apis/node.k8s.io/v1/runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'x' }, handler: 'runsc' });
  assert.equal(c.status, 201);
  assert.equal(c.body.metadata.generation, undefined);
  const u = await req('PUT', '/apis/node.k8s.io/v1/runtimeclasses/x', { ...c.body, handler: 'runc' });
  assert.equal(u.status, 422);
  assert.match(u.body.message, /^RuntimeClass.node.k8s.io "x" is invalid: handler: Invalid value: "runc": field is immutable/);
  const { stdout } = await run('kubectl', ['--server', s.url, 'get', 'runtimeclass', 'x', '--no-headers']);
  assert.match(stdout, /^x\s+runsc\s+\d+s/);
});

test('custom resources: generation on spec changes only, status subresource, TypeMeta in lists, printer columns', async () => {
  const base = '/apis/coffer.dev/v1alpha1/isolationpolicies';
  const p = { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'p' }, spec: { namespaceSelector: {}, isolation: 'sandbox', enforce: 'deny' }, status: { matchedPods: 99 } };
  const c = await req('POST', base, p);
  assert.equal(c.status, 201);
  assert.equal(c.body.metadata.generation, 1);
  assert.equal(c.body.status, undefined, 'status ignored on create');
  const st = await req('PATCH', `${base}/p/status`, { status: { matchedPods: 3 }, spec: { isolation: 'none' } }, 'application/merge-patch+json');
  assert.equal(st.status, 200);
  assert.equal(st.body.status.matchedPods, 3);
  assert.equal(st.body.spec.isolation, 'sandbox', 'spec ignored on the status subresource');
  assert.equal(st.body.metadata.generation, 1);
  const lab = await req('PATCH', `${base}/p`, { metadata: { labels: { a: 'b' } }, status: { matchedPods: 0 } }, 'application/merge-patch+json');
  assert.equal(lab.body.metadata.generation, 1, 'metadata changes do not bump the generation');
  assert.equal(lab.body.status.matchedPods, 3, 'status ignored on the main resource');
  const spec = await req('PATCH', `${base}/p`, { spec: { isolation: 'enclave' } }, 'application/merge-patch+json');
  assert.equal(spec.body.metadata.generation, 2);
  const stale = await req('PATCH', `${base}/p/status`, { metadata: { resourceVersion: c.body.metadata.resourceVersion }, status: { matchedPods: 1 } }, 'application/merge-patch+json');
  assert.equal(stale.status, 409);
  const list = await req('GET', base);
  assert.equal(list.body.kind, 'IsolationPolicyList');
  assert.equal(list.body.items[0].kind, 'IsolationPolicy', 'custom resource list items keep TypeMeta');
  const { stdout } = await run('kubectl', ['--server', s.url, 'get', 'ipol', '-o', 'wide']);
  const [head, row] = stdout.trim().split('\n');
  assert.deepEqual(head.split(/\s+/), ['NAME', 'ISOLATION', 'ENFORCE', 'RUNTIMECLASS', 'SIZING', 'AUTONOMY', 'NAMESPACES', 'PODS', 'AGE']);
  assert.match(row, /^p\s+enclave\s+deny\s+none\s+false\s+3\s+\d+s$/, "absent fields (runtimeClassName, matchedNamespaces) are null cells, printed blank; sizing/autonomy defaulted");
});

test('webhook configurations keep a generation', async () => {
  const base = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
  const c = await req('POST', base, { metadata: { name: 'w' }, webhooks: [] });
  assert.equal(c.body.metadata.generation, 1);
  const u = await req('PUT', `${base}/w`, { ...c.body, webhooks: [{ name: 'a.example.com', clientConfig: { url: 'https://x' }, admissionReviewVersions: ['v1'], sideEffects: 'None' }] });
  assert.equal(u.body.metadata.generation, 2);
});

test('custom resources: unknown fields pruned, schema defaults applied (status too)', async () => {
  const base = '/apis/coffer.dev/v1alpha1/isolationpolicies';
  const c = await req('POST', base, { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'd' }, spec: { namespaceSelector: {}, isolation: 'sandbox', bogus: 1 } });
  assert.equal(c.status, 201);
  assert.deepEqual(c.body.spec, { namespaceSelector: {}, isolation: 'sandbox', enforce: 'mutate', sizing: 'none', autonomy: false });
  const st = await req('PATCH', `${base}/d/status`, { status: { matchedPods: 2, matchedPodNames: ['a/b'], made: 'up', conditions: [{ type: 'X', extra: 1 }] } }, 'application/merge-patch+json');
  assert.deepEqual(st.body.status, { matchedPods: 2, matchedPodNames: ['a/b'], conditions: [{ type: 'X', extra: 1 }] });
});
