// End to end: `coffer controller` (all four controllers, flags exactly as the rendered Deployment passes them) as a
// child process against the fake kube-apiserver over HTTPS with client certificates; then `coffer webhook
// --from-cluster` serving the certificate the controller issued, called the way the API server calls it (TLS to
// <service>.<namespace>.svc trusting only the configuration's caBundle). Results read back with kubectl.
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { promisify } from 'node:util';
import { startFakeApiServer } from '../support/fake-apiserver.js';
import { makeNode, makePod } from '../support/k8s-objects.js';
import { makeTestPki, writeKubeconfig } from '../support/tls-certs.js';
import { waitFor } from '../support/wait.js';
import { buildManifests } from '../../src/k8s/manifests/render.js';
import { runCli } from '../../src/cli/run.js';

const exec = promisify(execFile);
const BIN = new URL('../../bin/coffer.js', import.meta.url).pathname;
const NS = 'coffer-system';

async function cli(argv: string[]) {
  let err = '';
  const r = await runCli(argv, { out: () => undefined, err: (s) => (err += s) });
  return { code: r.kind === 'exit' ? r.code : -1, err };
}

test('coffer controller: flag errors exit 2 before connecting', async () => {
  assert.match((await cli(['controller', '--cert-manager=maybe', '--kubeconfig', '/dev/null'])).err, /--cert-manager 'maybe' must be true or false/);
  assert.match((await cli(['controller', '--webhook-service', 'Bad_Name', '--kubeconfig', '/dev/null'])).err, /--webhook-service 'Bad_Name' is not a valid Kubernetes name/);
  assert.match((await cli(['controller', '--cert-validity', '10m', '--kubeconfig', '/dev/null'])).err, /at least 1h/);
  assert.equal((await cli(['controller', '--builtin-profiles', 'yes'])).code, 2);
});

function post(port: number, ca: Buffer, servername: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca, servername, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function stopChild(c: ChildProcess | undefined): Promise<number | null> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c?.exitCode ?? null);
  return new Promise((resolve) => {
    c.once('exit', (code) => resolve(code));
    c.kill('SIGTERM');
  });
}

test('coffer controller + coffer webhook end to end against the fake API server', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-ctl-e2e-'));
  const pki = await makeTestPki(join(dir, 'pki'), 'coffer-controller');
  const fake = await startFakeApiServer({ namespaces: [NS], tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca } });
  const kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, fake.url, pki);
  let controller: ChildProcess | undefined;
  let webhook: ChildProcess | undefined;
  try {
    // The install, as `coffer manifests` renders it (cluster objects the fake serves).
    const objects = buildManifests().flatMap((f) => f.objects) as any[];
    const put = (resource: string, group: string, kinds: string[]) => objects.filter((o) => kinds.includes(o.kind)).forEach((o) => fake.put(resource, structuredClone(o), group));
    put('mutatingwebhookconfigurations', 'admissionregistration.k8s.io', ['MutatingWebhookConfiguration']);
    put('validatingwebhookconfigurations', 'admissionregistration.k8s.io', ['ValidatingWebhookConfiguration']);
    put('runtimeprofiles', 'coffer.dev', ['RuntimeProfile']);
    fake.put('namespaces', { metadata: { name: 'secure', labels: { 'kubernetes.io/metadata.name': 'secure', tier: 'secure' } }, spec: {}, status: { phase: 'Active' } });
    fake.put('isolationpolicies', { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'tdx' }, spec: { namespaceSelector: { matchLabels: { tier: 'secure' } }, isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx', enforce: 'mutate', sizing: 'none', autonomy: true } }, 'coffer.dev');
    fake.put('nodes', makeNode('n1'));
    fake.put('pods', makePod('secure', 'ledger-0', 'n1'));

    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'coffer-controller');
    const tlsMount = deployment.spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === 'services-tls').mountPath;
    // The pod's paths mapped to this test: the services certificate directory, and a free loopback port.
    const args: string[] = deployment.spec.template.spec.containers[0].args.map((a: string) =>
      a.replace(tlsMount, join(dir, 'services-tls')).replace('/etc/coffer/node-trust-audit', join(dir, 'audit')).replace(/^0\.0\.0\.0:\d+$/, '127.0.0.1:0'));
    // The operator's audit key Secret (key.pem), as the kubelet projects it.
    mkdirSync(join(dir, 'audit'));
    writeFileSync(join(dir, 'audit', 'key.pem'), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    assert.deepEqual(args.slice(0, 2), ['controller', '--namespace']);
    // The kubelet's part: once webhook-ca has written the services Secret, project it into the pod's directory
    // (the node-trust reconciler waits for it: the first controller start issues the Secret it mounts).
    mkdirSync(join(dir, 'services-tls'));
    let projected = false;
    const kubelet = setInterval(() => {
      const s = fake.store.get('/secrets', `${NS}/coffer-services-tls`);
      if (!s || projected) return;
      for (const k of ['ca.crt', 'tls.crt', 'tls.key']) writeFileSync(join(dir, 'services-tls', k), Buffer.from(s.data[k], 'base64'));
      projected = true;
    }, 200);
    controller = spawn(process.execPath, [BIN, ...args, '--kubeconfig', kubeconfig], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    controller.stdout!.on('data', (c) => (out += c));
    controller.stderr!.on('data', (c) => (err += c));
    await waitFor('controller running', () => /"event":"running"/.test(out), 20_000)
      .catch((e) => {
        throw new Error(`${e.message}\n${err}`);
      })
      .finally(() => clearInterval(kubelet));
    // The manifests run it leader-elected: it campaigns on the Lease first, then starts the controllers.
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].event, 'campaigning');
    assert.deepEqual(lines.find((l) => l.event === 'running').controllers, ['autonomy', 'runtimeclass', 'webhook-ca', 'node-trust', 'policy-status']);
    // The report endpoint serves the services certificate: what agents reach through the coffer-node-trust Service.
    const started = err.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.event === 'controller_started' && l.controller === 'node-trust');
    assert.match(started.url, /^https:\/\/127\.0\.0\.1:\d+/);
    assert.equal(started.issuer, `https://coffer-attestation.${NS}.svc`);
    const svcSecret = fake.store.get('/secrets', `${NS}/coffer-services-tls`)!;
    const ready = await new Promise<number>((resolve, reject) =>
      request(`${started.url.replace(/\/$/, '')}/readyz`, { ca: Buffer.from(svcSecret.data['ca.crt'], 'base64'), servername: `coffer-node-trust.${NS}.svc` }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end(),
    );
    assert.ok(ready === 200 || ready === 503, `readiness answered over TLS (${ready})`);
    assert.equal(fake.store.get('coordination.k8s.io/leases', `${NS}/coffer-controller`)?.spec.holderIdentity, lines[0].identity);

    const secret = () => fake.store.get('/secrets', `${NS}/coffer-webhook-tls`);
    const vwc = () => fake.store.get('admissionregistration.k8s.io/validatingwebhookconfigurations', 'coffer-webhook')!;
    await waitFor('everything reconciled', () => {
      const pol = fake.store.get('coffer.dev/isolationpolicies', 'tdx');
      const ns = fake.store.get('/namespaces', 'secure');
      const pod = fake.store.get('/pods', 'secure/ledger-0');
      return (
        fake.store.get('node.k8s.io/runtimeclasses', 'kata-qemu-tdx') &&
        secret() &&
        vwc().webhooks.every((w: any) => w.clientConfig.caBundle) &&
        pol?.status?.matchedPods === 1 &&
        ns?.metadata.labels['coffer.dev/isolation'] === 'confidential-vm' &&
        pod?.spec.tolerations.every((t: any) => t.tolerationSeconds === undefined)
      );
    }, 20_000).catch((e) => {
      throw new Error(`${e.message}\n${err}`);
    });

    const k = (...a: string[]) => exec('kubectl', ['--kubeconfig', kubeconfig, ...a]).then((r) => r.stdout);
    const rcs = await k('get', 'runtimeclass', '-o', 'custom-columns=NAME:.metadata.name,HANDLER:.handler,MANAGED:.metadata.labels.app\\.kubernetes\\.io/managed-by', '--no-headers');
    assert.equal(rcs.trim().split('\n').length, 9, rcs);
    assert.match(rcs, /kata-mshv-vm-isolation\s+kata\s+coffer/);
    assert.match(await k('get', 'isolationpolicy', 'tdx', '-o', 'jsonpath={.status.matchedPodNames}'), /secure\/ledger-0/);
    assert.match(await k('get', 'ns', 'secure', '--show-labels', '--no-headers'), /coffer\.dev\/isolation=confidential-vm/);

    // The webhook with the controller's certificate, reached the way the API server reaches it.
    const s = secret()!;
    const file = (k: string) => Buffer.from(s.data[k], 'base64');
    writeFileSync(join(dir, 'tls.crt'), file('tls.crt'));
    writeFileSync(join(dir, 'tls.key'), file('tls.key'));
    webhook = spawn(process.execPath, [BIN, 'webhook', '--from-cluster', '--kubeconfig', kubeconfig, '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let wlog = '';
    webhook.stderr!.on('data', (c) => (wlog += c));
    const port = Number((await waitFor('webhook port', () => /"port":(\d+)/.exec(wlog), 20_000))![1]);
    const entry = vwc().webhooks.find((w: any) => w.name === 'governed.pods.coffer.dev');
    const ca = Buffer.from(entry.clientConfig.caBundle, 'base64');
    const host = `${entry.clientConfig.service.name}.${entry.clientConfig.service.namespace}.svc`;
    const pod = makePod('secure', 'ledger-1', '');
    delete pod.spec.nodeName;
    const review = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'e2e', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'secure', operation: 'CREATE', object: pod } });
    let r = await post(port, ca, host, '/mutate-v1-pod', review);
    for (const end = Date.now() + 10_000; r.status === 503 && Date.now() < end; r = await post(port, ca, host, '/mutate-v1-pod', review)) await new Promise((x) => setTimeout(x, 100));
    assert.equal(r.status, 200, r.body);
    const patch = JSON.parse(Buffer.from(JSON.parse(r.body).response.patch, 'base64').toString());
    assert.ok(patch.some((op: any) => op.path === '/spec/runtimeClassName' && op.value === 'kata-qemu-tdx'), r.body);

    assert.equal(await stopChild(controller), 0, 'controller stops cleanly on SIGTERM');
  } finally {
    await stopChild(controller);
    await stopChild(webhook);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
