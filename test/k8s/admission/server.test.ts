import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:https';
import { mkdtempSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { WebhookServer } from '../../../src/k8s/admission/server.js';
import { StaticSources } from '../../../src/k8s/admission/static-sources.js';
import { loadProfiles } from '../../../src/k8s/admission/inputs.js';
import { applyPatch } from '../../../src/k8s/admission/json-patch.js';
import { createTestCa, type TestCa } from '../../support/tls.js';
import { policy, pod } from '../support/fixtures.js';

let ca: TestCa;
let dir: string;
let server: WebhookServer;
let port: number;

const policies = [
  policy('tenants', { isolation: 'sandbox', sizing: 'aks', namespaceSelector: { matchLabels: { tenant: 'yes' } } }),
  policy('vault', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-snp', enforce: 'deny', namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'vault' } } }),
];
const sources = new StaticSources(policies, loadProfiles([]), [{ metadata: { name: 'team', labels: { tenant: 'yes' } } }], 'unknown');
sources.namespaceLabels = ((orig) => (n: string) => (n === 'vault' ? { 'kubernetes.io/metadata.name': 'vault' } : orig(n)))(sources.namespaceLabels.bind(sources));

let sourcesReady = true;
Object.assign(sources, { ready: () => sourcesReady });

function writeAtomically(path: string, text: string) {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

before(async () => {
  ca = await createTestCa();
  dir = mkdtempSync(join(tmpdir(), 'coffer-webhook-'));
  const leaf = await ca.issue();
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  server = new WebhookServer({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sources, host: '127.0.0.1', port: 0, maxBodyBytes: 64 * 1024, tlsDebounceMs: 20, tlsPollMs: 0 });
  ({ port } = await server.start());
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const agent = () => new Agent({ keepAlive: true, ca: ca.certPem, servername: 'localhost' });
const sharedAgent = { a: undefined as Agent | undefined };

function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  sharedAgent.a ??= agent();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: sharedAgent.a, headers: body ? { 'content-type': 'application/json', ...headers } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function review(obj: unknown, over: Record<string, unknown> = {}) {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-123', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'team', operation: 'CREATE', object: obj, ...over },
  });
}

test('mutate: AdmissionReview v1 response with uid, base64 JSONPatch that applies', async () => {
  const p = pod({ containers: [{ name: 'a', image: 'x', resources: { limits: { cpu: '2', memory: '1Gi' } } }] });
  const r = await call('POST', '/mutate-v1-pod', review(p));
  assert.equal(r.status, 200);
  const out = JSON.parse(r.body);
  assert.equal(out.apiVersion, 'admission.k8s.io/v1');
  assert.equal(out.kind, 'AdmissionReview');
  assert.equal(out.response.uid, 'u-123');
  assert.equal(out.response.allowed, true);
  assert.equal(out.response.patchType, 'JSONPatch');
  const mutated = applyPatch(p, JSON.parse(Buffer.from(out.response.patch, 'base64').toString()));
  assert.equal(mutated.spec!.runtimeClassName, 'kata-mshv-vm-isolation');
  assert.equal(mutated.metadata!.annotations!['io.katacontainers.config.hypervisor.default_vcpus'], '3');
  assert.equal(JSON.parse(out.response.auditAnnotations.decision).policy, 'tenants');
  // The mutated pod validates, and a second mutation is empty.
  const v = JSON.parse((await call('POST', '/validate-v1-pod', review(mutated))).body);
  assert.deepEqual(v.response, { uid: 'u-123', allowed: true, auditAnnotations: out.response.auditAnnotations });
  const again = JSON.parse((await call('POST', '/mutate-v1-pod', review(mutated))).body);
  assert.equal(again.response.patch, undefined);
});

test('validate denies an unmutated confidential pod; mutate denies host access under deny', async () => {
  const v = JSON.parse((await call('POST', '/validate-v1-pod', review(pod(), { namespace: 'vault' }))).body);
  assert.equal(v.response.allowed, false);
  assert.equal(v.response.status.code, 403);
  assert.match(v.response.status.message, /IsolationPolicy "vault" rule runtime-class/);
  const m = JSON.parse((await call('POST', '/mutate-v1-pod', review(pod({ hostPID: true }), { namespace: 'vault' }))).body);
  assert.equal(m.response.allowed, false);
  assert.match(m.response.status.message, /rule host-pid/);
  assert.equal(m.response.patch, undefined);
});

test('pods in unmatched namespaces, UPDATE and DELETE are allowed untouched', async () => {
  const s = new StaticSources(policies, loadProfiles([]));
  assert.deepEqual(s.namespaceLabels('other'), { 'kubernetes.io/metadata.name': 'other' });
  const upd = JSON.parse((await call('POST', '/mutate-v1-pod', review(pod(), { operation: 'UPDATE' }))).body);
  assert.deepEqual(upd.response, { uid: 'u-123', allowed: true });
  const del = JSON.parse((await call('POST', '/mutate-v1-pod', review(undefined, { operation: 'DELETE' }))).body);
  assert.deepEqual(del.response, { uid: 'u-123', allowed: true });
});

test('bad input: 400/405/413/415/503 or an AdmissionReview error, and the server keeps serving', async () => {
  assert.equal((await call('POST', '/mutate-v1-pod', '{not json')).status, 400);
  assert.equal((await call('POST', '/mutate-v1-pod', '[]')).status, 400);
  assert.equal((await call('POST', '/mutate-v1-pod', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }))).status, 400);
  assert.equal((await call('POST', '/mutate-v1-pod', review(pod(), { uid: 7 }))).status, 400);
  assert.equal((await call('POST', '/mutate-v1-pod', review(pod(), { operation: 'PATCH' }))).status, 400);
  assert.equal((await call('POST', '/mutate-v1-pod', review({ kind: 'Pod', spec: 'x' }))).status, 400);
  const st = await call('POST', '/mutate-v1-pod', review(pod(), { namespace: 'nowhere' }));
  assert.equal(st.status, 503, 'unknown namespace labels: let the failurePolicy decide');
  assert.equal(JSON.parse(st.body).kind, 'Status');
  const dep = JSON.parse((await call('POST', '/mutate-v1-pod', review({}, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }))).body);
  assert.equal(dep.response.allowed, false);
  assert.equal(dep.response.status.code, 400);
  assert.match(dep.response.status.message, /Pods only, got apps\/v1 Deployment/);
  const exec = JSON.parse((await call('POST', '/mutate-v1-pod', review({}, { subResource: 'exec' }))).body);
  assert.equal(exec.response.allowed, false);
  assert.equal((await call('GET', '/mutate-v1-pod')).status, 405);
  assert.equal((await call('POST', '/mutate-v1-pod', review(pod()), { 'content-type': 'text/plain' })).status, 415);
  const big = review(pod({}, { annotations: { x: 'y'.repeat(70 * 1024) } }));
  const tooBig = await call('POST', '/mutate-v1-pod', big);
  assert.equal(tooBig.status, 413);
  sharedAgent.a = undefined; // the 413 closes the connection
  const bad = await call('POST', '/mutate-v1-pod', review(pod({ containers: [{ name: 'a', resources: { limits: { cpu: 'x' } } }] })));
  assert.match(JSON.parse(bad.body).response.status.message, /rule input/);
  assert.equal((await call('GET', '/healthz')).status, 200);
  assert.equal((await call('GET', '/nope')).status, 404);
});

test('a pod nested 10,000 deep gets a clean 400 (bounded before parsing), not a 500 from a deep copy', async () => {
  const deep = review(pod({}, { annotations: {} })).replace('"annotations":{}', `"annotations":{"x":"y"},"deep":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`);
  assert.ok(deep.length < 64 * 1024, 'within the body limit, so the depth bound is what answers');
  const r = await call('POST', '/mutate-v1-pod', deep);
  assert.equal(r.status, 400, r.body);
  assert.match(r.body, /nested more than 64 levels deep/);
  const arrays = await call('POST', '/validate-v1-pod', review({ spec: { containers: '__DEEP__' } }).replace('"__DEEP__"', `${'['.repeat(5000)}${']'.repeat(5000)}`));
  assert.equal(arrays.status, 400, arrays.body);
  assert.equal((await call('GET', '/healthz')).status, 200);
});

test('healthz, readyz and per-instance Prometheus metrics', async () => {
  assert.equal((await call('GET', '/healthz')).body, 'ok\n');
  assert.equal((await call('GET', '/readyz')).status, 200);
  const m = await call('GET', '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /coffer_webhook_requests_total\{path="\/mutate-v1-pod",outcome="mutated"\} \d+/);
  assert.match(m.body, /coffer_webhook_requests_total\{path="\/mutate-v1-pod",outcome="bad_request"\} \d+/);
  assert.match(m.body, /coffer_webhook_request_duration_seconds_bucket/);
  assert.match(m.body, /coffer_webhook_certificate_not_after_seconds \d+/);
  // A second instance has its own registry (no global default registry collisions).
  const other = new WebhookServer({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sources });
  assert.notEqual(other.metrics.registry, server.metrics.registry);
  assert.doesNotMatch(await other.metrics.registry.metrics(), /outcome="mutated"/);
});

function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' }, () => {
      const der = s.getPeerX509Certificate();
      s.end();
      der ? resolve(der.serialNumber.toLowerCase().replace(/^0+/, '')) : reject(new Error('no peer certificate'));
    });
    s.on('error', reject);
  });
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}

test('TLS rotation: new files are picked up without restart; a mismatched pair keeps the old one', async () => {
  const before = await servedSerial();
  const next = await ca.issue();
  assert.notEqual(next.serial, before);
  // Half-written rotation: new certificate, old key → rejected, the old pair keeps serving.
  writeAtomically(join(dir, 'tls.crt'), next.certPem);
  await waitFor(async () => (await server.metrics.tlsReloads.get()).values.some((v) => v.labels.result === 'error' && v.value >= 1));
  assert.equal(await servedSerial(), before);
  writeAtomically(join(dir, 'tls.key'), next.keyPem);
  await waitFor(async () => (await servedSerial()) === next.serial.replace(/^0+/, ''));
  assert.equal(new X509Certificate(next.certPem).serialNumber.toLowerCase().replace(/^0+/, ''), next.serial.replace(/^0+/, ''));
  // Requests keep working on fresh connections with the new certificate.
  sharedAgent.a = undefined;
  assert.equal((await call('GET', '/healthz')).status, 200);
});

test('until the sources have synced: /readyz and admission answer 503 (failurePolicy decides)', async () => {
  sourcesReady = false;
  try {
    assert.equal((await call('GET', '/readyz')).status, 503);
    const r = await call('POST', '/mutate-v1-pod', review(pod()));
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.body).message, /not synced/);
  } finally {
    sourcesReady = true;
  }
  assert.equal((await call('GET', '/readyz')).status, 200);
});
