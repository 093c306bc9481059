// The webhook CA controller against the fake kube-apiserver, with the webhook configurations exactly as
// `coffer manifests` renders them: issue, caBundle sync, TLS handshake with the bundle, rotation, repair, 409.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { waitFor } from '../../support/wait.js';
import { webhookCaController } from '../../../src/k8s/controllers/webhook-ca.js';
import { reconcileWebhookCa, secretFiles } from '../../../src/k8s/controllers/webhook-ca-reconcile.js';
import { defaultTiming, issueWebhookCerts, parseBundle, serviceDnsNames } from '../../../src/k8s/controllers/webhook-certs.js';
import type { RunningController } from '../../../src/k8s/controllers/types.js';
import { buildManifests } from '../../../src/k8s/manifests/render.js';

const NS = 'coffer-system';
const DAY = 86_400_000;
let fake: FakeApiServer;
let ctl: RunningController;
let clock = Date.now();
const logs: { event: string; detail: Record<string, any> }[] = [];
const AR = 'admissionregistration.k8s.io';
const secret = () => fake.store.get('/secrets', `${NS}/coffer-webhook-tls`);
const cfg = (r: string) => fake.store.get(`${AR}/${r}`, 'coffer-webhook')!;
const bundles = (r: string) => cfg(r).webhooks.map((w: any) => w.clientConfig.caBundle);

before(async () => {
  fake = await startFakeApiServer({ namespaces: [NS] });
  const objects = buildManifests().flatMap((f) => f.objects) as any[];
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    const o = structuredClone(objects.find((x) => x.kind === kind));
    assert.ok(o, kind);
    if (kind === 'MutatingWebhookConfiguration') {
      // Someone else's webhook in the same configuration: never touched.
      o.webhooks.push({ ...o.webhooks[1], name: 'other.example.com', clientConfig: { service: { namespace: 'other', name: 'other', path: '/m', port: 443 }, caBundle: 'b3RoZXI=' } });
    }
    fake.put(kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations', o, AR);
  }
  // A leftover Secret of the wrong type (type is immutable: must be replaced, not updated).
  fake.put('secrets', { metadata: { name: 'coffer-webhook-tls', namespace: NS }, type: 'Opaque', data: { junk: 'eA==' } });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await webhookCaController.start(
    { kubeConfig: kc, log: (event, detail) => logs.push({ event, detail }) },
    { namespace: NS, service: 'coffer-webhook', secret: 'coffer-webhook-tls', configuration: 'coffer-webhook', validityMs: 30 * DAY, now: () => clock },
  );
});

after(async () => {
  await ctl?.stop();
  await fake?.close();
});

test('reconcile: pure plan and renewal time', async () => {
  const names = serviceDnsNames('svc', 'ns');
  const timing = defaultTiming(30 * DAY);
  const desired = { namespace: 'ns', service: 'svc', secretName: 's', dnsNames: names, timing };
  assert.deepEqual(reconcileWebhookCa(desired, { configs: {}, now: clock }).actions.map((a) => a.kind), ['issueSecret']);
  const c = await issueWebhookCerts(names, clock, timing);
  const b = (s: string) => Buffer.from(s).toString('base64');
  const s = { metadata: { resourceVersion: '3', uid: 'u' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b(c.certPem), 'tls.key': b(c.keyPem), 'ca.crt': b(c.caPem) } };
  const plan = reconcileWebhookCa(desired, { secret: s, configs: {}, now: clock });
  assert.deepEqual(plan.actions, []);
  assert.ok(Math.abs(plan.requeueAfterMs! - 20 * DAY) < 5000, `renew after two thirds: ${plan.requeueAfterMs}`);
  const other = reconcileWebhookCa({ ...desired, dnsNames: serviceDnsNames('svc2', 'ns') }, { secret: s, configs: {}, now: clock });
  assert.match((other.actions[0] as any).reason, /does not cover svc2/);
  const late = reconcileWebhookCa(desired, { secret: s, configs: {}, now: clock + 21 * DAY });
  assert.match((late.actions[0] as any).reason, /due for renewal/);
  assert.equal((late.actions[0] as any).keepCas.length, 1, 'the old CA stays trusted');
});

test('issues the serving certificate and fills every caBundle of our webhooks', async () => {
  await waitFor('caBundles set', () => secret()?.type === 'kubernetes.io/tls' && ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'].every((r) => bundles(r)[0] && bundles(r)[1]));
  const files = secretFiles(secret());
  const want = Buffer.from(files.ca!).toString('base64');
  for (const r of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    assert.deepEqual(bundles(r).slice(0, 2), [want, want], r);
  }
  assert.equal(cfg('mutatingwebhookconfigurations').webhooks[2].clientConfig.caBundle, 'b3RoZXI=', "another service's webhook untouched");
  assert.equal(secret()!.data.junk, undefined, 'the wrong-typed Secret was replaced');
  const leaf = new X509Certificate(files.cert!);
  assert.ok(leaf.subjectAltName!.includes('DNS:coffer-webhook.coffer-system.svc'));
  // What the API server does: TLS to <service>.<namespace>.svc trusting only caBundle.
  const server = tls.createServer({ cert: files.cert, key: files.key }, (s) => s.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as any).port;
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'coffer-webhook.coffer-system.svc', ca: Buffer.from(bundles('validatingwebhookconfigurations')[0], 'base64') }, () => {});
      let t = '';
      s.on('data', (d) => (t += d));
      s.on('end', () => resolve(t));
      s.on('error', reject);
    });
    assert.equal(text, 'ok');
  } finally {
    server.close();
  }
});

test('a tampered caBundle is restored, also when the first write loses a race (409)', async () => {
  const good = bundles('mutatingwebhookconfigurations')[0];
  let raced = false;
  const puts: string[] = [];
  fake.beforeRequest = (method, url) => {
    if (!url.startsWith('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/')) return;
    puts.push(method);
    if (method === 'PUT' && !raced) {
      raced = true;
      const o = cfg('mutatingwebhookconfigurations');
      fake.put('mutatingwebhookconfigurations', { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, edited: 'yes' } } }, AR);
    }
  };
  try {
    const o = cfg('mutatingwebhookconfigurations');
    const webhooks = structuredClone(o.webhooks);
    webhooks[0].clientConfig.caBundle = Buffer.from('garbage').toString('base64');
    fake.put('mutatingwebhookconfigurations', { ...o, webhooks }, AR);
    await waitFor('restored', () => bundles('mutatingwebhookconfigurations')[0] === good && cfg('mutatingwebhookconfigurations').metadata.labels.edited === 'yes');
    assert.deepEqual(puts.slice(0, 3), ['PUT', 'GET', 'PUT']);
    assert.ok(logs.some((l) => l.event === 'webhook_ca_conflict'));
    assert.ok(cfg('mutatingwebhookconfigurations').metadata.generation >= 3, 'generation follows webhook changes');
  } finally {
    fake.beforeRequest = undefined;
  }
});

test('rotation before expiry keeps the previous CA trusted; a Secret deleted during a watch outage is reissued after the 410 relist', async () => {
  const before = secretFiles(secret());
  clock += 21 * DAY; // past two thirds of the 30-day lifetime
  const s = secret()!;
  fake.put('secrets', { ...s, metadata: { ...s.metadata, annotations: { poke: '1' } } }); // any event triggers a pass
  await waitFor('rotated', () => secretFiles(secret()).cert !== before.cert && bundles('validatingwebhookconfigurations')[0] === Buffer.from(secretFiles(secret()).ca!).toString('base64'));
  const after = secretFiles(secret());
  const cas = parseBundle(after.ca!)!;
  assert.equal(cas.length, 2, 'new CA + previous CA');
  assert.equal(cas[1].toString(), parseBundle(before.ca!)![0].toString());
  assert.ok(new X509Certificate(after.cert!).verify(cas[0].publicKey));
  // Later, once the old CA has expired, it is pruned from the bundle (and the caBundles follow).
  clock += 10 * DAY;
  const s2 = secret()!;
  fake.put('secrets', { ...s2, metadata: { ...s2.metadata, annotations: { poke: '2' } } });
  await waitFor('pruned', () => parseBundle(secretFiles(secret()).ca!)!.length === 1 && bundles('mutatingwebhookconfigurations')[0] === Buffer.from(secretFiles(secret()).ca!).toString('base64'));
  assert.equal(secretFiles(secret()).cert, after.cert, 'pruning does not reissue');
  // Deleted while the watches were down and the history compacted: re-watch gets 410, the relist finds it gone.
  const lists: string[] = [];
  fake.beforeRequest = (m, u) => m === 'GET' && u.startsWith(`/api/v1/namespaces/${NS}/secrets?`) && !u.includes('watch=') && lists.push(u);
  try {
    fake.store.dropWatchers();
    fake.remove('secrets', NS, 'coffer-webhook-tls');
    fake.put('configmaps', { metadata: { name: 'bump', namespace: NS }, data: {} });
    fake.store.compact();
    await waitFor('reissued', () => secret() && secretFiles(secret()).cert !== after.cert);
    assert.ok(lists.length >= 1 && lists.every((u) => u.includes('fieldSelector=metadata.name%3Dcoffer-webhook-tls')), lists.join(' '));
  } finally {
    fake.beforeRequest = undefined;
  }
});

test("serving Secret for Coffer's other Services: issued and kept valid, one certificate naming each Service, reissued when deleted", async () => {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  const two = await webhookCaController.start(
    { kubeConfig: kc, log: () => undefined },
    { namespace: NS, service: 'other-webhook', secret: 'other-webhook-tls', configuration: 'absent', serving: { secret: 'coffer-services-tls', services: ['coffer-attestation', 'coffer-kbs'] }, validityMs: 30 * DAY, now: () => clock },
  );
  try {
    await waitFor('services Secret issued', () => fake.store.get('/secrets', `${NS}/coffer-services-tls`) !== undefined);
    const s = fake.store.get('/secrets', `${NS}/coffer-services-tls`)!;
    assert.equal(s.type, 'kubernetes.io/tls');
    const files = secretFiles(s);
    const leaf = new X509Certificate(files.cert!);
    for (const svc of ['coffer-attestation', 'coffer-kbs']) for (const n of serviceDnsNames(svc, NS)) assert.ok(leaf.checkHost(n), `${n} in the certificate`);
    assert.equal(leaf.checkHost(`coffer-webhook.${NS}.svc`), undefined, 'the webhook name is not in the services certificate');
    assert.ok(leaf.verify(parseBundle(files.ca!)![0].publicKey), 'ca.crt signs the leaf: what clients trust');
    // Deleted → reissued, like the webhook's own Secret.
    fake.remove('secrets', NS, 'coffer-services-tls');
    await waitFor('services Secret reissued', () => fake.store.get('/secrets', `${NS}/coffer-services-tls`) !== undefined);
  } finally {
    await two.stop();
  }
});
