import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { cli as run } from '../support/cli.js';
import { applyPatch } from '../../src/k8s/admission/json-patch.js';

const dir = mkdtempSync(join(tmpdir(), 'coffer-admit-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: tenants
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx
    resources:
      limits: {cpu: "1500m", memory: 1Gi}
`;
const POLICIES = `apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata: {name: tenants-sandbox}
spec:
  namespaceSelector: {matchLabels: {coffer.dev/tenant: "true"}}
  isolation: sandbox
  sizing: aks
---
apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata: {name: no-host}
spec:
  namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [tenants]}]}
  isolation: sandbox
  enforce: deny
`;
const NS = `apiVersion: v1
kind: Namespace
metadata:
  name: tenants
  labels: {coffer.dev/tenant: "true"}
`;

const pod = file('pod.yaml', POD);
const pol = file('pol.yaml', POLICIES);
const ns = file('ns.yaml', NS);


test('admit prints the mutated pod (exit 0)', async () => {
  const r = await run(['admit', pod, '--policy', pol, '--namespace', ns]);
  assert.equal(r.code, 0, r.err);
  const out = parse(r.out);
  assert.equal(out.spec.runtimeClassName, 'kata-mshv-vm-isolation');
  assert.equal(out.metadata.annotations['io.katacontainers.config.hypervisor.default_vcpus'], '3');
  assert.equal(out.metadata.annotations['io.katacontainers.config.hypervisor.default_memory'], '3072');
  const decision = JSON.parse(out.metadata.annotations['coffer.dev/decision']);
  assert.deepEqual(decision.matched, ['no-host', 'tenants-sandbox']);
  // Admitting the output again changes nothing.
  const again = await run(['admit', file('pod2.yaml', r.out), '--policy', pol, '--namespace', ns, '--output', 'review']);
  assert.equal(JSON.parse(again.out).response.patch, undefined);
});

test('admit --output review prints an AdmissionReview v1 response with a base64 JSON patch', async () => {
  const r = await run(['admit', pod, '--policy', pol, '--namespace', ns, '--output', 'review']);
  assert.equal(r.code, 0);
  const review = JSON.parse(r.out);
  assert.equal(review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(review.kind, 'AdmissionReview');
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(review.response.patch, 'base64').toString());
  assert.equal(applyPatch(parse(POD), ops).spec.runtimeClassName, 'kata-mshv-vm-isolation');
});

test('admit: denied pods exit 1 with the reason', async () => {
  const bad = file('bad.yaml', POD.replace('  containers:', '  hostNetwork: true\n  containers:'));
  const r = await run(['admit', bad, '--policy', pol, '--namespace', ns]);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /denied: IsolationPolicy "no-host" rule host-network/);
  const rv = await run(['admit', bad, '--policy', pol, '--namespace', ns, '--output', 'review']);
  assert.equal(rv.code, 1);
  assert.equal(JSON.parse(rv.out).response.status.code, 403);
});

test('admit: without --namespace only kubernetes.io/metadata.name is seen', async () => {
  const r = await run(['admit', pod, '--policy', pol]);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(parse(r.out).metadata.annotations['coffer.dev/decision']).matched, ['no-host']);
});

test('admit: input errors exit 2', async () => {
  assert.equal((await run(['admit', pod])).code, 2, 'missing --policy');
  assert.equal((await run(['admit', '/nope.yaml', '--policy', pol])).code, 2);
  assert.equal((await run(['admit', file('x.yaml', 'kind: [\n'), '--policy', pol])).code, 2);
  assert.equal((await run(['admit', pod, '--policy', file('p.yaml', POLICIES.replace('isolation: sandbox', 'isolation: vm'))])).code, 2);
  assert.equal((await run(['admit', pod, '--policy', pol, '--namespace', file('n.yaml', NS.replace('name: tenants', 'name: other'))])).code, 2);
  assert.equal((await run(['admit', pod, '--policy', pol, '--output', 'json'])).code, 2);
  const twice = await run(['admit', pod, '--policy', pol, pol]);
  assert.equal(twice.code, 2);
  assert.match(twice.err, /defined twice/);
});

test('bin/coffer.js admit exits with the contract codes', () => {
  const bin = new URL('../../bin/coffer.js', import.meta.url).pathname;
  const ok = spawnSync(process.execPath, [bin, 'admit', pod, '--policy', pol, '--namespace', ns], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(parse(ok.stdout).kind, 'Pod');
});
