// `coffer status` against the fake kube-apiserver and a real attestation service's JWKS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { makeNode, makePod } from '../support/k8s-objects.js';
import { cli } from '../support/cli.js';
import { ANN, ATTESTED_LABEL, UNTRUSTED_TAINT } from '../../src/k8s/controllers/node-trust-reconcile.js';
import { jwkThumbprint } from '../../src/k8s/cluster-status.js';
import { AUTONOMY_ANNOTATION, AUTONOMOUS_SINCE } from '../../src/k8s/controllers/autonomy-reconcile.js';
import { startTestAttestation, type TestAttestation } from '../k8s/controllers/node-trust-support.js';

let fake: FakeApiServer;
let svc: TestAttestation;
let dir: string;
let kubeconfig: string;
const soon = () => new Date(Date.now() + 600_000).toISOString();

function trustedNode(name: string) {
  return makeNode(name, { labels: { [ATTESTED_LABEL]: 'true', 'coffer.dev/tee.tdx': 'true' }, annotations: { [ANN.state]: 'trusted', [ANN.tee]: 'tpm', [ANN.tcbStatus]: 'UpToDate', [ANN.attestedAt]: new Date().toISOString(), [ANN.expiresAt]: soon(), 'coffer.dev/autonomy': 'true' } });
}
function confidentialPod(name: string, node: string) {
  const p = makePod('apps', name, node);
  p.metadata.annotations = { 'coffer.dev/decision': JSON.stringify({ policy: 'c', isolation: 'confidential-vm' }) };
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'coffer-status-'));
  fake = await startFakeApiServer({ namespaces: ['apps'] });
  svc = await startTestAttestation({ digests: ['aa'] });
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'f', cluster: { server: fake.url } }], users: [{ name: 'u', user: {} }], contexts: [{ name: 'c', context: { cluster: 'f', user: 'u' } }], 'current-context': 'c' }));
  fake.put('nodes', trustedNode('n1'));
  fake.put('nodes', makeNode('plain'));
  fake.put('pods', confidentialPod('ledger-0', 'n1'));
  fake.put('pods', makePod('apps', 'web-0', 'plain'));
  fake.put('runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'kata-cc' }, handler: 'kata-cc', scheduling: { nodeSelector: { 'coffer.dev/tee.tdx': 'true' } } }, 'node.k8s.io');
});
after(async () => {
  await fake?.close();
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every node with confidential pods trusted → exit 0; JSON carries each node', async () => {
  const r = await cli(['status', '--kubeconfig', kubeconfig, '--json']);
  assert.equal(r.code, 0, r.err + r.out);
  const s = JSON.parse(r.out);
  assert.equal(s.ok, true);
  const n1 = s.nodes.find((n: any) => n.name === 'n1');
  assert.deepEqual([n1.trust, n1.tee, n1.tcbStatus, n1.runtimeClasses, n1.autonomy, n1.confidentialPods], ['trusted', 'tpm', 'UpToDate', ['kata-cc'], 'connected', 1]);
  assert.equal(s.nodes.find((n: any) => n.name === 'plain').trust, 'unknown');
  const text = await cli(['status', '--kubeconfig', kubeconfig]);
  assert.match(text.out, /^NODE\s+TEE\s+TRUST/);
  assert.match(text.out, /ok: every node that runs confidential pods is trusted/);
});

test('RUNTIMECLASSES and AUTONOMY per node: classes whose nodeSelector matches (none = every node), autonomy as the autonomy controller records it', async () => {
  fake.put('runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'runc-everywhere' }, handler: 'runc' }, 'node.k8s.io');
  fake.put('runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'gvisor' }, handler: 'runsc', scheduling: { nodeSelector: { 'coffer.dev/runtime.runsc': 'true' } } }, 'node.k8s.io');
  // An edge node in an outage: the autonomy controller's annotations (AUTONOMY_ANNOTATION, AUTONOMOUS_SINCE).
  fake.put('nodes', makeNode('edge-1', { labels: { 'coffer.dev/runtime.runsc': 'true' }, annotations: { [AUTONOMY_ANNOTATION]: 'true', [AUTONOMOUS_SINCE]: new Date(Date.now() - 60_000).toISOString() } }));
  try {
    const r = await cli(['status', '--kubeconfig', kubeconfig, '--json']);
    assert.equal(r.code, 0, r.err + r.out);
    const by = Object.fromEntries(JSON.parse(r.out).nodes.map((n: any) => [n.name, [n.runtimeClasses, n.autonomy]]));
    assert.deepEqual(by, {
      'edge-1': [['gvisor', 'runc-everywhere'], 'autonomous'],
      n1: [['kata-cc', 'runc-everywhere'], 'connected'],
      plain: [['runc-everywhere'], 'off'],
    });
    const text = (await cli(['status', '--kubeconfig', kubeconfig])).out.split('\n');
    const header = text[0].split(/\s{2,}/);
    const row = (name: string) => text.find((l) => l.startsWith(`${name} `))!;
    const col = (line: string, h: string) => line.slice(text[0].indexOf(h)).split(/\s{2,}/)[0];
    assert.ok(header.includes('RUNTIMECLASSES') && header.includes('AUTONOMY'));
    assert.equal(col(row('edge-1'), 'RUNTIMECLASSES'), 'gvisor,runc-everywhere');
    assert.equal(col(row('edge-1'), 'AUTONOMY'), 'autonomous');
    assert.equal(col(row('plain'), 'AUTONOMY'), 'off');
  } finally {
    fake.remove('nodes', undefined, 'edge-1');
    fake.remove('runtimeclasses', undefined, 'runc-everywhere', 'node.k8s.io');
    fake.remove('runtimeclasses', undefined, 'gvisor', 'node.k8s.io');
  }
});

test('the service identity: pinned key published → verified; another key → exit 1; no pin → not verified', async () => {
  const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, string>[] };
  writeFileSync(join(dir, 'pin.json'), JSON.stringify(jwks.keys[0]));
  const ok = await cli(['status', '--kubeconfig', kubeconfig, '--attestation-url', svc.url, '--pin-jwk', join(dir, 'pin.json'), '--json']);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.equal(JSON.parse(ok.out).attestation.pinned, jwkThumbprint(jwks.keys[0]));
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  writeFileSync(join(dir, 'other.json'), JSON.stringify(other));
  const bad = await cli(['status', '--kubeconfig', kubeconfig, '--attestation-url', svc.url, '--pin-jwk', join(dir, 'other.json')]);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /NOT verified \(the pinned key is NOT among the published token keys\)/);
  assert.equal((await cli(['status', '--kubeconfig', kubeconfig, '--attestation-url', svc.url])).code, 1);
  assert.equal((await cli(['status', '--kubeconfig', kubeconfig, '--pin-jwk', join(dir, 'pin.json')])).code, 2);
  assert.equal((await cli(['status', '--kubeconfig', join(dir, 'missing')])).code, 2);
});

test('a node running confidential pods that is untrusted or past its expiry → exit 1', async () => {
  const n = trustedNode('n1');
  fake.put('nodes', { ...n, metadata: { ...n.metadata, annotations: { ...n.metadata.annotations, [ANN.expiresAt]: new Date(Date.now() - 1000).toISOString() } } });
  const expired = await cli(['status', '--kubeconfig', kubeconfig, '--json']);
  assert.equal(expired.code, 1);
  assert.equal(JSON.parse(expired.out).nodes.find((x: any) => x.name === 'n1').trust, 'expired', 'the label alone is not trust');
  fake.put('nodes', makeNode('n1', { annotations: { [ANN.state]: 'untrusted', [ANN.reason]: 'AttestationRejected: x' } }));
  const f = fake.store.get('/nodes', 'n1')!;
  fake.put('nodes', { ...f, spec: { ...f.spec, taints: [{ key: UNTRUSTED_TAINT, value: 'true', effect: 'NoSchedule' }] } });
  const u = await cli(['status', '--kubeconfig', kubeconfig]);
  assert.equal(u.code, 1);
  assert.match(u.out, /n1: AttestationRejected: x/);
  // No confidential pod on it any more → ok again.
  fake.remove('pods', 'apps', 'ledger-0');
  assert.equal((await cli(['status', '--kubeconfig', kubeconfig])).code, 0);
});
