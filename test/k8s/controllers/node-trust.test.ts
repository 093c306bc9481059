// The node-trust controller end to end in-process: the real attestation service issues EAR tokens, the fake
// kube-apiserver holds Nodes, NodeTrustPolicies, Events; tokens are posted as an agent would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { SignJWT, generateKeyPair, decodeJwt } from 'jose';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { makeNode } from '../../support/k8s-objects.js';
import { waitFor } from '../../support/wait.js';
import { nodeTrustController, type NodeTrustController } from '../../../src/k8s/controllers/node-trust.js';
import { ANN, ATTESTED_LABEL, UNTRUSTED_TAINT } from '../../../src/k8s/controllers/node-trust-reconcile.js';
import { nodeTrustPolicy, postReport, startTestAttestation, type TestAttestation } from './node-trust-support.js';
import { NodeTrustAuditSink, TRANSITION_ANNOTATION } from '../../../src/k8s/controllers/node-trust-audit.js';
import { generateKeyPairSync } from 'node:crypto';

const GOOD = 'a0'.repeat(32);
const BAD = 'b0'.repeat(32);
let fake: FakeApiServer;
let svc: TestAttestation;
let ctl: NodeTrustController;
let kc: KubeConfig;
const audits: any[] = [];
const logs: { event: string; detail: Record<string, unknown> }[] = [];

const nodeOf = (n: string) => fake.store.get('/nodes', n)!;
const trusted = (n: string) => nodeOf(n).metadata.labels?.[ATTESTED_LABEL] === 'true' && !(nodeOf(n).spec?.taints ?? []).some((t: any) => t.key === UNTRUSTED_TAINT);
const tainted = (n: string) => nodeOf(n).metadata.labels?.[ATTESTED_LABEL] === undefined && (nodeOf(n).spec?.taints ?? []).some((t: any) => t.key === UNTRUSTED_TAINT);
const events = (n: string) => [...fake.store.collection('/events').values()].filter((e: any) => e.involvedObject?.name === n);
const start = () => nodeTrustController.start({ kubeConfig: kc, log: (event, detail) => logs.push({ event, detail }) }, { attestationUrl: svc.url, audit: (r) => audits.push(r), jwksMinReloadMs: 0, auditKey: svc.auditKeyPem });

before(async () => {
  svc = await startTestAttestation({ digests: [GOOD, BAD], ttlSeconds: 4 });
  fake = await startFakeApiServer();
  for (const n of ['n1', 'n2', 'n3']) fake.put('nodes', makeNode(n, { labels: { 'coffer.dev/pool': 'cc' } }));
  fake.put('nodes', makeNode('plain'));
  fake.put('nodetrustpolicies', nodeTrustPolicy('cc', { nodeSelector: { matchLabels: { 'coffer.dev/pool': 'cc' } }, allowedTees: ['sample'], referenceValues: { sample: { launch_digest: [GOOD] } }, requireEnrolledIdentity: false }), 'coffer.dev');
  kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await start();
});

after(async () => {
  await ctl?.stop();
  await fake?.close();
  await svc?.close();
});

test('good tokens: label, annotations, Event and audit record; the unselected node is untouched', async () => {
  // No grace period: selected nodes that never attested are tainted at once.
  await waitFor('unattested nodes tainted', () => ['n1', 'n2', 'n3'].every(tainted));
  assert.match(nodeOf('n1').metadata.annotations[ANN.reason], /^NotAttested/);
  for (const n of ['n1', 'n2', 'n3']) {
    const r = await postReport(ctl.url, { token: await svc.tokenFor(n, GOOD) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.node, n);
  }
  await waitFor('three trusted nodes', () => ['n1', 'n2', 'n3'].every(trusted));
  const ann = nodeOf('n1').metadata.annotations;
  assert.equal(ann[ANN.state], 'trusted');
  assert.equal(ann[ANN.tee], 'sample');
  assert.ok(Date.parse(ann[ANN.expiresAt]) > Date.parse(ann[ANN.attestedAt]));
  assert.match(ann[ANN.tokenId], /^[0-9a-f-]{36}$/);
  const ev = events('n1').sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  assert.deepEqual(ev.map((e: any) => [e.reason, e.type]), [['NotAttested', 'Warning'], ['NodeTrusted', 'Normal']]);
  assert.equal(ev[1].involvedObject.kind, 'Node');
  assert.equal(ev[1].involvedObject.uid, nodeOf('n1').metadata.uid);
  assert.ok(audits.some((a) => a.node === 'n1' && a.to === 'trusted'));
  assert.equal(nodeOf('plain').metadata.labels?.[ATTESTED_LABEL], undefined);
});

test('a changed measurement: label removed, taint added, the reason names it; restored → trusted again', async () => {
  await postReport(ctl.url, { token: await svc.tokenFor('n2', BAD) });
  await waitFor('n2 tainted', () => tainted('n2'));
  assert.match(nodeOf('n2').metadata.annotations[ANN.reason], new RegExp(`^AttestationRejected: sample: launch_digest = ${BAD} is not a reference value`));
  const ev = events('n2').find((e: any) => e.reason === 'AttestationRejected');
  assert.ok(ev, 'Warning Event on the Node');
  assert.equal(ev.type, 'Warning');
  await postReport(ctl.url, { token: await svc.tokenFor('n2', GOOD) });
  await waitFor('n2 trusted again', () => trusted('n2'));
  assert.deepEqual(events('n2').map((e: any) => e.reason).sort(), ['AttestationRejected', 'NodeTrusted', 'NodeTrusted', 'NotAttested']);
});

test("the attacker's tokens: unbound, wrong audience, foreign key, tampered, stale, unknown node — refused, nothing changes", async () => {
  const rv = nodeOf('n1').metadata.resourceVersion;
  const unbound = await postReport(ctl.url, { token: await svc.tokenFor(undefined, BAD) });
  assert.deepEqual([unbound.status, unbound.body.code], [401, 'TOKEN_NODE_BINDING']);
  const otherRd = await postReport(ctl.url, { token: await svc.tokenFor('n1', BAD, { runtimeData: { notnode: 'n1' } }) });
  assert.deepEqual([otherRd.status, otherRd.body.code], [401, 'TOKEN_NODE_BINDING']);
  const aud = await postReport(ctl.url, { token: await svc.tokenFor('n1', BAD, { audience: 'kbs' }) });
  assert.deepEqual([aud.status, aud.body.code], [401, 'TOKEN_CLAIMS']);
  // Same claims, signed by a key the service never published (same kid, too).
  const real = await svc.tokenFor('n1', GOOD);
  const claims = decodeJwt(real);
  const { privateKey } = await generateKeyPair('ES256');
  const kid = JSON.parse(Buffer.from(real.split('.')[0], 'base64url').toString()).kid;
  const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
  const f = await postReport(ctl.url, { token: forged });
  assert.deepEqual([f.status, f.body.code], [401, 'TOKEN_SIGNATURE']);
  const otherKid = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'attacker' }).sign(privateKey);
  assert.equal((await postReport(ctl.url, { token: otherKid })).body.code, 'TOKEN_UNKNOWN_KEY');
  // A node's good token with the payload edited to name another node.
  const [h, p, s] = (await svc.tokenFor('n2', GOOD)).split('.');
  const edited = JSON.parse(Buffer.from(p, 'base64url').toString());
  edited.submods.sample['ear.veraison.annotated-evidence'].runtime_data_claims.node = 'n1';
  const t = await postReport(ctl.url, { token: `${h}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${s}` });
  assert.deepEqual([t.status, t.body.code], [401, 'TOKEN_SIGNATURE']);
  assert.equal((await postReport(ctl.url, { token: 'x.y.z' })).status, 401);
  assert.equal((await postReport(ctl.url, { nope: 1 })).status, 400);
  const unknown = await postReport(ctl.url, { token: await svc.tokenFor('ghost', GOOD) });
  assert.equal(unknown.status, 404);
  // An older token delivered after a newer one does not roll the node back.
  const older = await svc.tokenFor('n1', BAD);
  await new Promise((r) => setTimeout(r, 1100)); // iat has second resolution
  assert.equal((await postReport(ctl.url, { token: await svc.tokenFor('n1', GOOD) })).status, 202);
  const stale = await postReport(ctl.url, { token: older });
  assert.equal(stale.body.accepted, false);
  await ctl.settled!();
  assert.ok(trusted('n1'));
  assert.ok(Number(nodeOf('n1').metadata.resourceVersion) >= Number(rv));
  assert.deepEqual(events('n1').map((e: any) => e.reason).sort(), ['NodeTrusted', 'NotAttested']);
});

test('restart: a new controller keeps recorded trust until the tokens expire, then removes it (requeue-after), without duplicate Events', async () => {
  const before = [...fake.store.collection('/events').values()].length;
  await ctl.stop();
  ctl = await start();
  await ctl.settled!();
  assert.ok(['n1', 'n2', 'n3'].every(trusted), 'recorded trust kept across the restart');
  assert.equal([...fake.store.collection('/events').values()].length, before, 'no Event for an unchanged state');
  // No token arrives any more (the service is "down" for these nodes): trust ends at expires-at (4 s TTL).
  const exp = Date.parse(nodeOf('n3').metadata.annotations[ANN.expiresAt]);
  await waitFor('n3 expired', () => tainted('n3'), exp - Date.now() + 3000);
  assert.ok(Date.now() >= exp, 'not before the recorded expiry');
  assert.match(nodeOf('n3').metadata.annotations[ANN.reason], /^AttestationExpired/);
  assert.equal(events('n3').filter((e: any) => e.reason === 'AttestationExpired').length, 1);
  assert.equal(nodeOf('plain').metadata.labels?.[ATTESTED_LABEL], undefined);
  assert.deepEqual(logs.filter((l) => l.event === 'node_trust_retry'), []);
});

/** The service's audit log, node-trust records only (GET /v1/admin/audit, what the dashboard's audit view reads). */
async function auditLog(): Promise<any[]> {
  const r = await fetch(`${svc.url}/v1/admin/audit?limit=1000`, { headers: { authorization: `Bearer ${await svc.adminToken()}` } });
  assert.equal(r.status, 200);
  return ((await r.json()) as any[]).filter((x) => x.action.startsWith('node-trust.'));
}

test("every transition is one record in the service's audit log, also across the restart's replays", async () => {
  await ctl.auditSink!.drained();
  const evs = [...fake.store.collection('/events').values()].filter((e: any) => e.source?.component === 'coffer-node-trust');
  const fromEvents = evs.map((e: any) => JSON.parse(e.metadata.annotations[TRANSITION_ANNOTATION])).map((r: any) => `${r.node} ${r.id} ${r.to} ${r.reason}`).sort();
  const rows = await auditLog();
  const fromAudit = rows.map((x) => `${x.target} ${x.details.transition} ${x.details.to} ${x.result}`).sort();
  assert.deepEqual(fromAudit, fromEvents, 'one audit record per Event, none missing, none twice');
  assert.ok(rows.every((x) => x.actor.startsWith('node-trust-controller:') && x.action === `node-trust.${x.details.to}`));
  const expired = rows.find((x) => x.target === 'n3' && x.result === 'AttestationExpired');
  assert.ok(expired, 'the expiry is audited');
  assert.equal(expired.details.from, 'trusted');
  // The restarted controller re-sent the records of the Events it found: the service answered "replay" for them.
  assert.ok(ctl.auditSink!.stats.replays > 0, JSON.stringify(ctl.auditSink!.stats));
  assert.equal(ctl.auditSink!.stats.rejected + ctl.auditSink!.stats.dropped, 0);
});

test("the audit endpoint: only the controller's key writes, records are shape-checked and bounded", async () => {
  const url = `${svc.url}/v1/node-trust/audit`;
  const rec = { id: '0123456789abcdef', node: 'n1', from: 'trusted', to: 'untrusted', reason: 'AttestationRejected', message: 'forged', at: new Date().toISOString() };
  const post = (auth: string | undefined, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(body) });
  const before = (await auditLog()).length;
  // No credential, an admin token, a token signed by another key: 401, nothing written.
  for (const auth of [undefined, `Bearer ${await svc.adminToken()}`, 'Bearer x.y.z']) {
    const r = await post(auth, { records: [rec] });
    assert.equal(r.status, 401, String(auth));
    assert.equal(((await r.json()) as any).type, 'https://coffer.dev/problems/node-trust-audit-unauthenticated');
  }
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const forger = new NodeTrustAuditSink({ url: svc.url, keyPem: other, identity: 'mallory', log: () => {}, baseBackoffMs: 60_000 });
  forger.add({ ...rec, from: 'trusted', to: 'untrusted' } as never);
  await waitFor('forger refused', () => forger.stats.failures > 0);
  forger.stop();
  // The controller's audit token is no admin credential.
  const sink = new NodeTrustAuditSink({ url: svc.url, keyPem: svc.auditKeyPem, identity: 'probe', log: () => {} });
  const tok = await (sink as any).token();
  sink.stop();
  assert.equal((await fetch(`${svc.url}/v1/admin/audit`, { headers: { authorization: `Bearer ${tok}` } })).status, 401);
  // With the right key: malformed or oversized batches are typed 400s.
  for (const body of [{ records: [{ ...rec, id: 'not-hex' }] }, { records: [{ ...rec, node: 'Bad_Name' }] }, { records: [{ ...rec, extra: 1 }] }, { records: [] }, { records: Array.from({ length: 101 }, () => rec) }, { records: [{ ...rec, message: 'x'.repeat(1025) }] }]) {
    const r = await post(`Bearer ${tok}`, body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 100));
  }
  assert.equal((await post(`Bearer ${tok}`, { records: [{ ...rec, message: 'x'.repeat(300_000) }] })).status, 413);
  assert.equal((await auditLog()).length, before, 'nothing written by any of these');
  // A valid record twice: one row.
  const first = (await (await post(`Bearer ${tok}`, { records: [rec] })).json()) as any;
  const again = (await (await post(`Bearer ${tok}`, { records: [rec, rec] })).json()) as any;
  assert.equal(first.results[0].created, true);
  assert.deepEqual(again.results.map((x: any) => [x.created, x.auditId]), [[false, first.results[0].auditId], [false, first.results[0].auditId]]);
  assert.equal((await auditLog()).length, before + 1);
});
