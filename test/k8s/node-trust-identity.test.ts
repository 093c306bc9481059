// Node identity, from the attacker's side, with real peers: `coffer up`'s services without --dev (a TPM
// manufacturer CA directory), two swtpms with EK certificates from a test CA, their AKs enrolled under their node
// names, the node-trust controller on the fake kube-apiserver. Root on node-a (its TPM, its enrolled AK, good PCRs)
// tries to get node-b trusted: by a token naming node-b, and by enrolling its TPM as node-b.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startServices } from '../../src/cli/commands/up.js';
import { captureContext, cli } from '../support/cli.js';
import { startSwtpm, swtpmSkip, tpm2ToolsSkip, type Swtpm } from '../support/swtpm.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { makeNode } from '../support/k8s-objects.js';
import { waitFor } from '../support/wait.js';
import { manufactureSwtpm } from '../support/swtpm-manufacture.js';
import { TpmClient, SocketTransport, enrolAk, httpEnrolPost, TpmEnrolError } from '../../src/node/tpm/index.js';
import { TpmEvidenceSource } from '../../src/node/attest/evidence.js';
import { NodeAttester, NodeAttestError } from '../../src/node/attest/node-attester.js';
import { nodeTrustController, type NodeTrustController } from '../../src/k8s/controllers/node-trust.js';
import { ATTESTED_LABEL, UNTRUSTED_TAINT } from '../../src/k8s/controllers/node-trust-reconcile.js';
import { nodeTrustPolicy } from './controllers/node-trust-support.js';

const skip = swtpmSkip || tpm2ToolsSkip || (spawnSync('swtpm_setup', ['--help']).status === 0 ? false : 'swtpm_setup (swtpm-tools) is not installed');

let dir: string;
let svc: Awaited<ReturnType<typeof startServices>>;
let fake: FakeApiServer;
let ctl: NodeTrustController | undefined;
let adminToken: string;
const tpms: Swtpm[] = [];
const clients: Record<string, TpmClient> = {};
const akIds: Record<string, string> = {};
const logs: { event: string; detail: Record<string, unknown> }[] = [];

const nodeOf = (name: string) => fake.store.get('/nodes', name)!;
const isTrusted = (name: string) => nodeOf(name).metadata.labels?.[ATTESTED_LABEL] === 'true' && !(nodeOf(name).spec?.taints ?? []).some((t: any) => t.key === UNTRUSTED_TAINT);
const isTainted = (name: string) => nodeOf(name).metadata.labels?.[ATTESTED_LABEL] === undefined && (nodeOf(name).spec?.taints ?? []).some((t: any) => t.key === UNTRUSTED_TAINT);
const eventsOf = (name: string) => [...fake.store.collection('/events').values()].filter((e: any) => e.involvedObject?.name === name);

/** One attestation round of the agent on `tpm`'s machine, claiming to be `claims` (the attacker edits its agent's node name). */
const attestAs = (tpm: string, claims: string) =>
  new NodeAttester({ nodeName: claims, attestationUrl: svc.url, controllerUrl: ctl!.url, source: new TpmEvidenceSource(clients[tpm], { pcrs: [0, 7] }) }).attestOnce();

async function admin(method: string, path: string): Promise<Response> {
  return fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } });
}

async function auditOf(action: string): Promise<{ action: string; result: string; target: string; details?: Record<string, unknown> }[]> {
  return (await (await admin('GET', `/v1/admin/audit?action=${action}&limit=1000`)).json()) as never;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'coffer-nodeid-'));
  const ca = join(dir, 'ca');
  mkdirSync(ca);
  const states = ['a', 'b', 'c'].map((n) => manufactureSwtpm(dir, n, ca));
  const caDir = join(dir, 'tpm-ca');
  mkdirSync(caDir);
  writeFileSync(join(caDir, 'root.pem'), readFileSync(join(ca, 'swtpm-localca-rootca-cert.pem')));
  writeFileSync(join(caDir, 'issuer.pem'), readFileSync(join(ca, 'issuercert.pem')));
  svc = await startServices('up', { port: '0', host: '127.0.0.1', data: join(dir, 'data'), pcsUrl: 'off', kdsUrl: 'off', swtpm: 'off', tpmCaDir: caDir }, captureContext(), {});
  const t = await cli(['admin-token', '--data', join(dir, 'data')]);
  assert.equal(t.code, 0, t.err);
  adminToken = t.out.trim();
  const put = await fetch(`${svc.url}/v1/admin/reference-values/default`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ tees: ['tpm'] }) });
  assert.ok(put.status < 300, await put.text());
  for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
    const tpm = await startSwtpm({ stateDir: states[i] });
    tpms.push(tpm);
    clients[name] = new TpmClient(await SocketTransport.connect(tpm.port));
  }
  // node-a and node-b enrol under their names (node-c's TPM stays unenrolled until the rename test).
  for (const name of ['node-a', 'node-b']) akIds[name] = (await enrolAk(clients[name], { attester: name, ek: 'rsa', ak: 'ecc', post: httpEnrolPost(svc.url) })).akId;
  fake = await startFakeApiServer();
  for (const name of ['node-a', 'node-b', 'node-c']) fake.put('nodes', makeNode(name, { labels: { 'coffer.dev/pool': 'confidential' } }));
  // requireEnrolledIdentity left at its default (true).
  fake.put('nodetrustpolicies', nodeTrustPolicy('tpm-pool', { nodeSelector: { matchLabels: { 'coffer.dev/pool': 'confidential' } }, allowedTees: ['tpm'] }), 'coffer.dev');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await nodeTrustController.start({ kubeConfig: kc, log: (event, detail) => logs.push({ event, detail }) }, { attestationUrl: svc.url, jwksMinReloadMs: 0 });
  await waitFor('unattested nodes tainted', () => ['node-a', 'node-b', 'node-c'].every(isTainted), 10_000);
});

after(async () => {
  if (skip) return;
  await ctl?.stop();
  for (const c of Object.values(clients)) await c.close().catch(() => {});
  for (const t of tpms) await t.stop();
  await fake?.close();
  await svc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("node-a's TPM speaking for node-b: the service signs (the quote is good) but the controller refuses TOKEN_NODE_IDENTITY; node-b is not labelled, a Warning Event names node-a", { skip }, async () => {
  await assert.rejects(attestAs('node-a', 'node-b'), (e: unknown) => e instanceof NodeAttestError && e.status === 401 && /TOKEN_NODE_IDENTITY .*enrolled as node "node-a", but the token names node "node-b"/.test(e.message));
  await ctl!.settled!();
  assert.ok(isTainted('node-b'), 'node-b stays untrusted');
  assert.ok(logs.some((l) => l.event === 'node_trust_token_rejected' && l.detail.code === 'TOKEN_NODE_IDENTITY'));
  const ev: any = await waitFor('identity Event on node-b', () => eventsOf('node-b').find((e: any) => e.reason === 'NodeTrustIdentityRefused'));
  assert.equal(ev.type, 'Warning');
  assert.match(ev.message, new RegExp(`TOKEN_NODE_IDENTITY.*\\(${akIds['node-a']}\\) is enrolled as node "node-a"`));
  // The genuine agents: each trusted on its own TPM.
  for (const n of ['node-a', 'node-b']) assert.equal((await attestAs(n, n)).status, 'affirming');
  await waitFor('node-a and node-b trusted', () => isTrusted('node-a') && isTrusted('node-b'), 10_000);
  // The impostor again, now that node-b is trusted: refused, and it cannot untrust node-b either; the same refusal
  // does not add a second Event.
  const rv = nodeOf('node-b').metadata.resourceVersion;
  await assert.rejects(attestAs('node-a', 'node-b'), (e: unknown) => e instanceof NodeAttestError && /TOKEN_NODE_IDENTITY/.test(e.message));
  await ctl!.settled!();
  assert.ok(isTrusted('node-b'));
  assert.equal(nodeOf('node-b').metadata.resourceVersion, rv, 'node-b untouched');
  assert.equal(eventsOf('node-b').filter((e: any) => e.reason === 'NodeTrustIdentityRefused').length, 1);
  // An unenrolled TPM gets no token at all (TPM_AK_UNTRUSTED at the service), whatever node it names.
  await assert.rejects(attestAs('node-c', 'node-c'), (e: unknown) => e instanceof NodeAttestError && e.code === 'ATTEST_FAILED' && /TPM_AK_UNTRUSTED/.test(e.message));
});

test("node-a's TPM enrolling as node-b (or as any second name) is refused and audited; the same TPM re-enrolling under its name is allowed; a rename is revoke, then enrol", { skip }, async () => {
  const enrol = (tpm: string, attester: string) => enrolAk(clients[tpm], { attester, ek: 'rsa', ak: 'ecc', post: httpEnrolPost(svc.url) });
  await assert.rejects(enrol('node-a', 'node-b'), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_ATTESTER_BOUND' && e.status === 409 && e.message.includes(akIds['node-b']));
  // A name nobody holds yet (node-c is still being provisioned): one TPM enrols under one name only.
  await assert.rejects(enrol('node-a', 'node-c'), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_EK_BOUND' && e.message.includes(akIds['node-a']));
  const refused = (await auditOf('tpm.enrol')).filter((a) => a.result === 'rejected').map((a) => [a.target, a.details?.code]);
  assert.ok(refused.some(([t, c]) => t === 'node-b' && c === 'TPM_ATTESTER_BOUND') && refused.some(([t, c]) => t === 'node-c' && c === 'TPM_EK_BOUND'), JSON.stringify(refused));
  // Re-install / AK rotation: the same EK under the same name.
  const again = await enrol('node-a', 'node-a');
  assert.equal(again.akId, akIds['node-a'], 'the same AK: its registration stands');
  // node-b still trusted on its own TPM; node-a still on its own.
  assert.equal((await attestAs('node-b', 'node-b')).status, 'affirming');
  // A node renamed (node-a's machine becomes node-c): the admin revokes its AK, then it enrols under the new name.
  const active = ((await (await admin('GET', '/v1/admin/tpm/aks')).json()) as { id: string; attester: string; revokedAt: string | null }[]).filter((r) => r.attester === 'node-a' && r.revokedAt === null);
  assert.ok(active.length >= 1);
  for (const r of active) assert.equal((await admin('DELETE', `/v1/admin/tpm/aks/${r.id}`)).status < 300, true);
  // A revoked AK is never enrolled again (TPM_AK_REVOKED): the renamed machine enrols a new AK (RSA this time).
  const renamed = await enrolAk(clients['node-a'], { attester: 'node-c', ek: 'rsa', ak: 'rsa', post: httpEnrolPost(svc.url) });
  assert.equal(((await (await admin('GET', `/v1/admin/tpm/aks/${renamed.akId}`)).json()) as { attester: string }).attester, 'node-c');
  // node-b's name still belongs to node-b's TPM.
  await assert.rejects(enrolAk(clients['node-a'], { attester: 'node-b', ek: 'rsa', ak: 'rsa', post: httpEnrolPost(svc.url) }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_ATTESTER_BOUND');
});
