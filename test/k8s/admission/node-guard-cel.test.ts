import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '@bufbuild/cel';
import { buildManifests } from '../../../src/k8s/manifests/render.js';
import { decideNodeTrust } from '../../../src/k8s/admission/node-guard.js';
import type { AdmissionRequest } from '../../../src/k8s/admission/review.js';

/**
 * The ValidatingAdmissionPolicy's CEL, evaluated (with @bufbuild/cel, a CEL implementation for ECMAScript) the way
 * the API server does: matchConditions, then variables, then every validation; and cross-checked against the
 * webhook handler on the same requests — the two layers of the node trust guard must agree.
 */
const CONTROLLER = 'system:serviceaccount:coffer-system:coffer-controller';
const AGENT = 'system:serviceaccount:coffer-system:coffer-agent';
const objs = buildManifests().flatMap((f) => f.objects) as any[];
const vap = objs.find((o) => o.kind === 'ValidatingAdmissionPolicy').spec;
const nodeEntry = objs.find((o) => o.kind === 'ValidatingWebhookConfiguration').webhooks.find((w: { name: string }) => w.name === 'nodes.coffer.dev');

const toCel = (v: unknown): unknown => (Array.isArray(v) ? v.map(toCel) : v && typeof v === 'object' ? new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])) : v);

interface Shape { name?: string; labels?: Record<string, string>; annotations?: Record<string, string>; taints?: { key: string; effect: string }[]; unschedulable?: boolean }
const node = (n: Shape) => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: n.name ?? 'node-1', labels: { 'kubernetes.io/hostname': n.name ?? 'node-1', ...n.labels }, ...(n.annotations ? { annotations: n.annotations } : {}) },
  spec: { ...(n.taints ? { taints: n.taints } : {}), ...(n.unschedulable ? { unschedulable: true } : {}) },
});

/** The VAP's verdict: true = admitted. */
function vapAdmits(username: string, oldNode: Shape | null, newNode: Shape, extra: Record<string, string[]> = {}): boolean {
  const request = { userInfo: { username, groups: ['system:authenticated'], extra }, operation: oldNode ? 'UPDATE' : 'CREATE' };
  const base = { request: toCel(request), object: toCel(node(newNode)), oldObject: oldNode ? toCel(node(oldNode)) : null };
  for (const m of vap.matchConditions) if (run(m.expression, base as never) !== true) return true; // not matched: policy does not apply
  const variables = new Map<string, unknown>();
  for (const v of vap.variables) variables.set(v.name, run(v.expression, { ...base, variables } as never));
  return vap.validations.every((v: { expression: string }) => {
    const r = run(v.expression, { ...base, variables } as never);
    assert.equal(typeof r, 'boolean', `${v.expression} evaluated to ${String(r)}`);
    return r === true;
  });
}

function webhookAdmits(username: string, oldNode: Shape | null, newNode: Shape, extra: Record<string, string[]> = {}): boolean {
  const r: AdmissionRequest = {
    uid: 'u', kind: { group: '', version: 'v1', kind: 'Node' }, operation: oldNode ? 'UPDATE' : 'CREATE',
    userInfo: { username, extra }, object: node(newNode), ...(oldNode ? { oldObject: node(oldNode) } : {}),
  };
  return decideNodeTrust(r, { trustWriters: [CONTROLLER], agents: [AGENT] }).allowed;
}

/** Whether the API server would call the webhook at all (its matchConditions). */
function webhookCalled(username: string, oldNode: Shape | null, newNode: Shape): boolean {
  const base = { request: toCel({ userInfo: { username } }), object: toCel(node(newNode)), oldObject: oldNode ? toCel(node(oldNode)) : null };
  return nodeEntry.matchConditions.every((m: { expression: string }) => run(m.expression, base as never) === true);
}

const attested = { 'coffer.dev/attested': 'true' };
const taint = [{ key: 'coffer.dev/untrusted', effect: 'NoSchedule' }];
const CASES: [string, string, Shape | null, Shape, boolean, Record<string, string[]>?][] = [
  ['agent sets coffer.dev/attested', AGENT, {}, { labels: attested }, false],
  ['agent removes coffer.dev/attested', AGENT, { labels: attested }, {}, false],
  ['agent changes an attested-until label', AGENT, { labels: { 'coffer.dev/attested-until': 'a' } }, { labels: { 'coffer.dev/attested-until': 'b' } }, false],
  ['agent sets a trust annotation', AGENT, {}, { annotations: { 'coffer.dev/trust.token': 'x' } }, false],
  ['agent removes the untrusted taint', AGENT, { taints: taint }, {}, false],
  ['agent sets its discovery labels', AGENT, { labels: attested }, { labels: { ...attested, 'coffer.dev/tee.snp': 'true', 'coffer.dev/runtime.kata-qemu-snp': 'true' } }, true],
  ['agent sets another label', AGENT, {}, { labels: { 'node-role.kubernetes.io/control-plane': '' } }, false],
  ['agent cordons', AGENT, {}, { unschedulable: true }, false],
  ['agent on another node', AGENT, { name: 'node-1' }, { name: 'node-1', labels: { 'coffer.dev/tee.sgx': 'true' } }, false, { 'authentication.kubernetes.io/node-name': ['node-9'] }],
  ['agent on its own node', AGENT, { name: 'node-1' }, { name: 'node-1', labels: { 'coffer.dev/tee.sgx': 'true' } }, true, { 'authentication.kubernetes.io/node-name': ['node-1'] }],
  ['controller sets coffer.dev/attested and removes the taint', CONTROLLER, { taints: taint }, { labels: attested }, true],
  ['kubelet registers with coffer.dev/attested', 'system:node:node-1', null, { labels: attested }, false],
  ['kubelet registers plainly', 'system:node:node-1', null, { labels: { 'topology.kubernetes.io/zone': 'a' } }, true],
  ['admin cordons a tainted node', 'alice', { taints: taint }, { taints: taint, unschedulable: true }, true],
  ['admin removes the untrusted taint', 'alice', { taints: taint }, {}, false],
];

test('the VAP CEL evaluates as intended and agrees with the webhook handler on every case', () => {
  for (const [what, user, o, n, want, extra] of CASES) {
    assert.equal(vapAdmits(user, o, n, extra), want, `VAP: ${what}`);
    assert.equal(webhookAdmits(user, o, n, extra), want, `webhook: ${what}`);
  }
});

test('the webhook is called only for non-controller writes that touch a trust key: cordon never depends on it', () => {
  assert.equal(webhookCalled('alice', {}, { unschedulable: true }), false);
  assert.equal(webhookCalled('alice', { taints: taint }, { taints: taint, unschedulable: true }), true, 'the taint is present: the guard checks it stays');
  assert.equal(webhookCalled(AGENT, {}, { labels: attested }), true);
  assert.equal(webhookCalled(CONTROLLER, {}, { labels: attested }), false);
  assert.equal(webhookCalled('system:node:node-1', null, { labels: attested }), true);
});

test("the keys the node-trust controller really writes (its ANN table, label, taint) are guarded in both layers: agents, kubelets and users cannot forge them, the controller can", async () => {
  const { ANN, ATTESTED_LABEL, UNTRUSTED_TAINT } = await import('../../../src/k8s/controllers/node-trust-reconcile.js');
  const trustedAnns = Object.fromEntries(Object.values(ANN).map((k) => [k, 'x']));
  const untrusted = [{ key: UNTRUSTED_TAINT, effect: 'NoSchedule' }];
  // What the controller writes when a node becomes trusted: the label, every annotation, the taint removed.
  const trusted: Shape = { labels: { [ATTESTED_LABEL]: 'true' }, annotations: trustedAnns };
  assert.equal(vapAdmits(CONTROLLER, { taints: untrusted }, trusted), true, 'VAP: controller marks a node trusted');
  assert.equal(webhookAdmits(CONTROLLER, { taints: untrusted }, trusted), true, 'webhook: controller marks a node trusted');
  for (const user of [AGENT, 'system:node:node-1', 'alice']) {
    assert.equal(vapAdmits(user, { taints: untrusted }, trusted), false, `VAP: ${user} forges trust`);
    assert.equal(webhookAdmits(user, { taints: untrusted }, trusted), false, `webhook: ${user} forges trust`);
    for (const k of Object.values(ANN)) {
      // Each annotation alone: set, changed (e.g. pushing expires-at into the future), removed.
      for (const [o, n] of [[{}, { annotations: { [k]: 'x' } }], [{ annotations: { [k]: 'x' } }, { annotations: { [k]: 'y' } }], [{ annotations: { [k]: 'x' } }, {}]] as [Shape, Shape][]) {
        assert.equal(vapAdmits(user, o, n), false, `VAP: ${user} writes ${k}`);
        assert.equal(webhookAdmits(user, o, n), false, `webhook: ${user} writes ${k}`);
        assert.equal(webhookCalled(user, o, n), true, `the webhook is called for ${user} writing ${k}`);
      }
    }
  }
  // The agent still updates its discovery labels beside the controller's keys on a trusted node.
  assert.equal(vapAdmits(AGENT, trusted, { ...trusted, labels: { ...trusted.labels, 'coffer.dev/tee.tdx': 'true' } }), true);
  assert.equal(webhookAdmits(AGENT, trusted, { ...trusted, labels: { ...trusted.labels, 'coffer.dev/tee.tdx': 'true' } }), true);
});
