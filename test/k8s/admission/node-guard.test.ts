import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:https';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { WebhookServer, PATHS } from '../../../src/k8s/admission/server.js';
import { StaticSources } from '../../../src/k8s/admission/static-sources.js';
import { loadProfiles } from '../../../src/k8s/admission/inputs.js';
import { buildManifests } from '../../../src/k8s/manifests/render.js';
import { createTestCa, type TestCa } from '../../support/tls.js';

/**
 * The node trust guard over real HTTPS with real AdmissionReview v1 bodies, as the API server sends them for Node
 * CREATE/UPDATE (request.userInfo from the authenticator). Usernames are what the manifests configure.
 */
const CONTROLLER = 'system:serviceaccount:coffer-system:coffer-controller';
const AGENT = 'system:serviceaccount:coffer-system:coffer-agent';
let ca: TestCa;
let dir: string;
let server: WebhookServer;
let port: number;
let agent: Agent;

before(async () => {
  ca = await createTestCa();
  dir = mkdtempSync(join(tmpdir(), 'coffer-node-guard-'));
  const leaf = await ca.issue();
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  server = new WebhookServer({
    certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sources: new StaticSources([], loadProfiles([]), [], 'unknown'),
    host: '127.0.0.1', port: 0, tlsPollMs: 0, nodeGuard: { trustWriters: [CONTROLLER], agents: [AGENT] },
  });
  ({ port } = await server.start());
  agent = new Agent({ keepAlive: true, ca: ca.certPem, servername: 'localhost' });
});
after(async () => {
  agent.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface NodeShape { labels?: Record<string, string>; annotations?: Record<string, string>; taints?: { key: string; value?: string; effect: string }[]; unschedulable?: boolean; name?: string }
const node = (n: NodeShape) => ({
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: n.name ?? 'node-1', labels: { 'kubernetes.io/hostname': n.name ?? 'node-1', ...n.labels }, ...(n.annotations ? { annotations: n.annotations } : {}) },
  spec: { ...(n.taints ? { taints: n.taints } : {}), ...(n.unschedulable ? { unschedulable: true } : {}) },
});

async function decide(username: string, oldNode: NodeShape | null, newNode: NodeShape, extra?: Record<string, string[]>, path: string = PATHS.nodes) {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: 'uid-1', kind: { group: '', version: 'v1', kind: 'Node' }, resource: { group: '', version: 'v1', resource: 'nodes' },
      name: newNode.name ?? 'node-1', operation: oldNode ? 'UPDATE' : 'CREATE',
      userInfo: { username, uid: 'x', groups: ['system:serviceaccounts', 'system:authenticated'], ...(extra ? { extra } : {}) },
      object: node(newNode), ...(oldNode ? { oldObject: node(oldNode) } : {}),
    },
  });
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent, headers: { 'content-type': 'application/json' } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(res.status, 200, res.body);
  const review = JSON.parse(res.body);
  assert.equal(review.response.uid, 'uid-1');
  return review.response as { allowed: boolean; status?: { code: number; message: string } };
}

const attested = { 'coffer.dev/attested': 'true' };
const untrustedTaint = [{ key: 'coffer.dev/untrusted', effect: 'NoSchedule' }];

test("the agent's identity cannot set, change or remove coffer.dev/attested; the controller's can", async () => {
  const set = await decide(AGENT, {}, { labels: attested });
  assert.equal(set.allowed, false);
  assert.equal(set.status?.code, 403);
  assert.match(set.status!.message, /coffer-agent may not set, change or remove the trust label\(s\) coffer\.dev\/attested on node node-1/);
  assert.equal((await decide(AGENT, { labels: attested }, {})).allowed, false, 'remove');
  assert.equal((await decide(AGENT, { labels: attested }, { labels: { 'coffer.dev/attested': 'false' } })).allowed, false, 'change');
  assert.equal((await decide(AGENT, {}, { labels: { 'coffer.dev/attested-until': '2030-01-01' } })).allowed, false, 'attested* prefix');
  for (const [o, n] of [[{}, { labels: attested }], [{ labels: attested }, {}]] as const) assert.equal((await decide(CONTROLLER, o, n)).allowed, true);
  // Unchanged trust labels are fine for the agent: it updates its discovery labels beside them.
  assert.equal((await decide(AGENT, { labels: attested }, { labels: { ...attested, 'coffer.dev/tee.tdx': 'true' } })).allowed, true);
});

test('trust annotations and the coffer.dev/untrusted taint: only the controller; any other user, kubelet included, is refused', async () => {
  const users = [AGENT, 'system:node:node-1', 'alice@example.com', ''];
  for (const u of users) {
    assert.equal((await decide(u, {}, { annotations: { 'coffer.dev/attested-at': 'x' } })).allowed, false, `${u}: annotation`);
    assert.equal((await decide(u, {}, { annotations: { 'coffer.dev/trust.token': 'x' } })).allowed, false, `${u}: trust annotation`);
    // What the node-trust controller really writes (trust.coffer.dev/*): forging the expiry or the state is refused.
    const forged = await decide(u, { annotations: { 'trust.coffer.dev/expires-at': '2026-01-01T00:00:00Z' } }, { annotations: { 'trust.coffer.dev/expires-at': '2099-01-01T00:00:00Z' } });
    assert.equal(forged.allowed, false, `${u}: trust.coffer.dev/expires-at`);
    assert.match(forged.status!.message, /trust annotation\(s\) trust\.coffer\.dev\/expires-at/);
    assert.equal((await decide(u, {}, { annotations: { 'trust.coffer.dev/state': 'trusted' } })).allowed, false, `${u}: trust.coffer.dev/state`);
    assert.equal((await decide(u, { taints: untrustedTaint }, {})).allowed, false, `${u}: remove taint`);
    assert.equal((await decide(u, {}, { taints: untrustedTaint })).allowed, false, `${u}: add taint`);
    assert.equal((await decide(u, { taints: untrustedTaint }, { taints: [{ key: 'coffer.dev/untrusted', effect: 'NoExecute' }] })).allowed, false, `${u}: change effect`);
  }
  // A kubelet registering itself with --node-labels coffer.dev/attested=true (Node CREATE).
  assert.equal((await decide('system:node:node-1', null, { labels: attested })).allowed, false);
  assert.equal((await decide(CONTROLLER, { taints: untrustedTaint }, {})).allowed, true);
  // Anything else stays possible for other users: cordon, ordinary labels and taints.
  assert.equal((await decide('alice@example.com', { taints: untrustedTaint }, { taints: untrustedTaint, unschedulable: true, labels: { team: 'a' } })).allowed, true);
  assert.equal((await decide('system:node:node-1', null, { labels: { 'node.kubernetes.io/instance-type': 'x' } })).allowed, true);
});

test('the agent changes only its discovery labels on its own node', async () => {
  assert.equal((await decide(AGENT, {}, { labels: { 'coffer.dev/tee.sgx': 'true', 'coffer.dev/runtime.kata-qemu': 'true' } })).allowed, true);
  assert.equal((await decide(AGENT, {}, { labels: { 'node-role.kubernetes.io/control-plane': '' } })).allowed, false, 'foreign label');
  assert.equal((await decide(AGENT, {}, { annotations: { note: 'x' } })).allowed, false, 'annotations');
  assert.equal((await decide(AGENT, {}, { taints: [{ key: 'x', effect: 'NoSchedule' }] })).allowed, false, 'taints');
  assert.equal((await decide(AGENT, {}, { unschedulable: true })).allowed, false, 'spec');
  const extra = { 'authentication.kubernetes.io/node-name': ['node-2'] };
  assert.equal((await decide(AGENT, {}, { labels: { 'coffer.dev/tee.sgx': 'true' } }, extra)).allowed, false, 'another node');
  assert.equal((await decide(AGENT, { name: 'node-2' }, { name: 'node-2', labels: { 'coffer.dev/tee.sgx': 'true' } }, extra)).allowed, true, 'its own node');
});

test('a webhook without configured trust writers refuses every trust change (fail closed); non-Node reviews are 400', async () => {
  const bare = new WebhookServer({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sources: new StaticSources([], loadProfiles([]), [], 'unknown'), host: '127.0.0.1', port: 0, tlsPollMs: 0 });
  const saved = port;
  ({ port } = await bare.start());
  try {
    assert.equal((await decide(CONTROLLER, {}, { labels: attested })).allowed, false);
  } finally {
    await bare.close();
    port = saved;
  }
  const podReview = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: {} } });
  const r = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: PATHS.nodes, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end(podReview);
  });
  assert.equal(JSON.parse(r).response.status.code, 400);
});

test('manifests: ValidatingAdmissionPolicy + binding keyed on the controller username; webhook entry and args match', () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  const vap = objs.find((o) => o.kind === 'ValidatingAdmissionPolicy');
  const binding = objs.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding');
  assert.equal(vap.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.equal(binding.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.equal(binding.spec.policyName, vap.metadata.name);
  assert.deepEqual(binding.spec.validationActions, ['Deny']);
  assert.equal(vap.spec.failurePolicy, 'Fail');
  assert.deepEqual(vap.spec.matchConstraints.resourceRules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['nodes'] }]);
  assert.deepEqual(vap.spec.matchConditions, [{ name: 'not-the-controller', expression: `request.userInfo.username != '${CONTROLLER}'` }]);
  const exprs = vap.spec.validations.map((v: { expression: string }) => v.expression).join('\n');
  // Structural checks of the CEL: old vs new object, every trust key family, the taint, the agent's limits.
  for (const needle of ["startsWith('coffer.dev/attested')", "startsWith('trust.coffer.dev/')", "startsWith('coffer.dev/trust')", "t.key.startsWith('coffer.dev/untrusted')", `request.userInfo.username == '${AGENT}'`, "'authentication.kubernetes.io/node-name' in request.userInfo.extra", "'coffer.dev/tee.sgx'", "startsWith('coffer.dev/runtime.')", 'variables.oldLabels', 'variables.newAnnotations']) {
    assert.ok(exprs.includes(needle), needle);
  }
  for (const v of vap.spec.variables) assert.match(v.expression, /^(oldObject == null \|\| )?!has\((old)?[oO]bject\./);
  // Balanced parentheses and quotes in every expression (a cheap syntax sanity check without a CEL parser).
  for (const e of [...vap.spec.validations, ...vap.spec.variables, ...vap.spec.matchConditions].map((x: { expression: string }) => x.expression)) {
    let depth = 0;
    for (const ch of e.replace(/'[^']*'/g, '')) {
      if (ch === '(' || ch === '[') depth++;
      if (ch === ')' || ch === ']') depth--;
      assert.ok(depth >= 0, e);
    }
    assert.equal(depth, 0, e);
    assert.equal((e.match(/'/g) ?? []).length % 2, 0, e);
  }
  const vwc = objs.find((o) => o.kind === 'ValidatingWebhookConfiguration');
  const entry = vwc.webhooks.find((w: { name: string }) => w.name === 'nodes.coffer.dev');
  assert.equal(entry.failurePolicy, 'Fail');
  assert.equal(entry.clientConfig.service.path, PATHS.nodes);
  assert.deepEqual(entry.rules[0].operations, ['CREATE', 'UPDATE']);
  assert.match(entry.matchConditions[0].expression, new RegExp(`!= '${CONTROLLER}'`));
  const webhook = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'coffer-webhook');
  const args: string[] = webhook.spec.template.spec.containers[0].args;
  assert.equal(args[args.indexOf('--node-trust-writer') + 1], CONTROLLER);
  assert.equal(args[args.indexOf('--node-agent') + 1], AGENT);
});
