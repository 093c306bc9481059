import { test } from 'node:test';
import { matchesSelector } from '../../../src/k8s/admission/selector.js';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments, parse } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { buildManifests, helmChartFiles, kustomizeFiles, validateObject } from '../../../src/k8s/manifests/render.js';
import { renderHelmSubset, valueReferences, lookupValue } from '../../../src/k8s/manifests/helm-subset.js';
import { DEFAULT_VALUES, mergeValues } from '../../../src/k8s/manifests/values.js';
import { cli as run } from '../../support/cli.js';
import { spawnCofferServer, type CofferServer } from '../../support/cli.js';

const root = new URL('../../../', import.meta.url).pathname;
const kustomizeDir = join(root, 'deploy/kustomize');
const helmDir = join(root, 'deploy/helm/coffer');

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

function docs(text: string): any[] {
  return parseAllDocuments(text).map((d) => d.toJSON()).filter((x) => x !== null);
}

const key = (o: any) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
const byKey = (list: any[]) => [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

test('deploy/kustomize and deploy/helm/coffer match the generator (run `npm run generate:deploy`)', () => {
  for (const [dir, files] of [[kustomizeDir, kustomizeFiles()], [helmDir, helmChartFiles()]] as const) {
    assert.deepEqual(listFiles(dir), [...files.keys()].sort(), `${dir}: file list drifted`);
    for (const [name, text] of files) assert.equal(readFileSync(join(dir, name), 'utf8'), text, `${dir}/${name} drifted from the generator`);
  }
});

const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));

test('kubectl kustomize renders deploy/kustomize to exactly the generated objects', { skip: kubectl ? false : 'kubectl not installed' }, () => {
  const r = spawnSync(kubectl!, ['kustomize', kustomizeDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rendered = docs(r.stdout);
  const expected = buildManifests().flatMap((f) => f.objects);
  assert.equal(rendered.length, expected.length);
  assert.deepEqual(byKey(rendered), byKey(JSON.parse(JSON.stringify(expected))));
});

test('Helm chart: every .Values reference resolves, and the defaults reproduce the kustomize output', () => {
  const chart = helmChartFiles();
  const values = parse(chart.get('values.yaml')!);
  assert.deepEqual(values, JSON.parse(JSON.stringify(DEFAULT_VALUES)));
  let refs = 0;
  for (const [name, text] of chart) {
    if (!name.startsWith('templates/')) continue;
    for (const ref of valueReferences(text)) {
      refs++;
      assert.ok(lookupValue(values, ref).found, `${name}: .Values.${ref} is not in values.yaml`);
    }
  }
  assert.ok(refs > 20);
  const render = (vals: unknown) =>
    [...chart].filter(([n]) => n.startsWith('templates/') || n.startsWith('crds/')).flatMap(([n, t]) => docs(renderHelmSubset(t, vals, n)));
  const kustomized = [...kustomizeFiles()].filter(([n]) => n !== 'kustomization.yaml').flatMap(([, t]) => docs(t));
  assert.deepEqual(byKey(render(values)), byKey(kustomized));
  // Conditionals and substitutions follow the values like the generator does.
  const custom = mergeValues({ namespace: 'secure', certManager: { enabled: true }, agent: { enabled: false, sgx: { enabled: false } }, webhook: { replicas: 3 }, image: { tag: '9.9.9' } });
  const expected = JSON.parse(JSON.stringify(buildManifests(custom).flatMap((f) => f.objects)));
  assert.deepEqual(byKey(render(JSON.parse(JSON.stringify(custom)))), byKey(expected));
  assert.throws(() => renderHelmSubset('x: {{ .Values.nope }}', values), /not defined in values.yaml/);
  assert.throws(() => renderHelmSubset('x: {{ include "a" . }}', values), /outside the supported subset/);
});

function find(objs: any[], kind: string, name?: string) {
  return objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

test('webhook configurations: Fail for every namespace a policy selects (label Exists), Ignore elsewhere, 5 s timeout, system namespaces excluded', () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
    const [cfg] = find(objs, kind, 'coffer-webhook');
    const pods = cfg.webhooks.filter((w: any) => w.rules[0].resources[0] === 'pods');
    assert.equal(pods.length, 2);
    assert.deepEqual(pods.map((w: any) => w.name).sort(), ['governed.pods.coffer.dev', 'pods.coffer.dev']);
    for (const w of cfg.webhooks) {
      assert.equal(w.timeoutSeconds, 5);
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.equal(w.sideEffects, 'None');
    }
    for (const w of pods) {
      const exprs = w.namespaceSelector.matchExpressions;
      assert.deepEqual(exprs[0], { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'coffer-system'] });
      const gov = exprs[1];
      assert.equal(gov.key, 'coffer.dev/isolation');
      assert.equal(gov.values, undefined);
      assert.equal(w.failurePolicy, gov.operator === 'Exists' ? 'Fail' : 'Ignore');
      assert.ok(['Exists', 'DoesNotExist'].includes(gov.operator));
      assert.equal(w.clientConfig.service.path, kind.startsWith('Mutating') ? '/mutate-v1-pod' : '/validate-v1-pod');
    }
    // Every isolation level the controller may write lands in the Fail entry (sandbox and none included).
    const fail = pods.find((w: any) => w.failurePolicy === 'Fail');
    for (const level of ['none', 'sandbox', 'confidential-vm', 'enclave']) {
      assert.ok(matchesSelector(fail.namespaceSelector, { 'kubernetes.io/metadata.name': 'apps', 'coffer.dev/isolation': level }), level);
    }
    assert.ok(!matchesSelector(fail.namespaceSelector, { 'kubernetes.io/metadata.name': 'apps' }));
    assert.ok(!matchesSelector(fail.namespaceSelector, { 'kubernetes.io/metadata.name': 'kube-system', 'coffer.dev/isolation': 'sandbox' }));
  }
  const cm = buildManifests(mergeValues({ certManager: { enabled: true } })).flatMap((f) => f.objects) as any[];
  assert.equal(find(cm, 'MutatingWebhookConfiguration')[0].metadata.annotations['cert-manager.io/inject-ca-from'], 'coffer-system/coffer-webhook');
  assert.equal(find(cm, 'Certificate')[0].spec.secretName, 'coffer-webhook-tls');
  assert.deepEqual(find(cm, 'Certificate')[0].spec.dnsNames, ['coffer-webhook.coffer-system.svc', 'coffer-webhook.coffer-system.svc.cluster.local']);
  assert.equal(find(objs, 'Certificate').length, 0);
});

test('RBAC is least privilege; no privileged container (SGX quotes come from aesmd, not from Coffer)', () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  for (const role of [...find(objs, 'ClusterRole'), ...find(objs, 'Role')]) {
    for (const r of role.rules) {
      for (const f of ['verbs', 'resources', 'apiGroups']) assert.ok(!r[f].includes('*'), `${role.metadata.name}: wildcard ${f}`);
      if (r.resources.includes('secrets')) {
        assert.equal(role.kind, 'Role', 'secrets only in Coffer\'s namespace');
        assert.ok(r.verbs.every((v: string) => v === 'create') || JSON.stringify(r.resourceNames) === JSON.stringify(['coffer-webhook-tls', 'coffer-services-tls']));
      }
      if (r.resources.some((x: string) => x.endsWith('webhookconfigurations'))) assert.deepEqual(r.resourceNames, ['coffer-webhook']);
    }
  }
  const privileged: string[] = [];
  for (const w of [...find(objs, 'Deployment'), ...find(objs, 'DaemonSet')]) {
    for (const c of w.spec.template.spec.containers) if (c.securityContext?.privileged) privileged.push(`${w.metadata.name}/${c.name}`);
    assert.ok(!w.spec.template.spec.hostNetwork && !w.spec.template.spec.hostPID);
  }
  // No exception: the TPM users (attest agent, quote helper) get /dev/tpmrm0 from the coffer.dev/tpm device plugin.
  assert.deepEqual(privileged, []);
  const attest = find(objs, 'DaemonSet', 'coffer-agent-attest')[0].spec.template.spec;
  assert.equal(attest.automountServiceAccountToken, false, 'the attest pod carries no API credential');
  assert.deepEqual(attest.volumes.filter((v: any) => v.hostPath), [], 'no hostPath: the device and the event log come from the device plugin');
  for (const m of attest.containers[0].volumeMounts) assert.equal(m.readOnly, true, `attest/${m.name} read-only`);
  assert.deepEqual(attest.volumes.find((v: any) => v.name === 'services-ca').secret.items, [{ key: 'ca.crt', path: 'ca.crt' }], 'the CA only, never the services key');
  assert.deepEqual(attest.nodeSelector, { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.tpm': 'true' });
  const sgx = find(objs, 'DaemonSet', 'coffer-agent-sgx')[0];
  assert.deepEqual(sgx.spec.template.spec.volumes.map((v: any) => v.hostPath.path), ['/var/lib/kubelet/device-plugins', '/sys', '/dev']);
  for (const c of sgx.spec.template.spec.containers) for (const m of c.volumeMounts) if (m.name !== 'device-plugins') assert.equal(m.readOnly, true, `${c.name}/${m.name} read-only`);
  assert.equal(find(objs, 'RuntimeProfile').length, 9);
  assert.ok(find(objs, 'DaemonSet', 'coffer-agent-tpm').length === 1 && find(objs, 'DaemonSet', 'coffer-quote-helper').length === 1);
  assert.equal(find(objs, 'CustomResourceDefinition').length, 3);
});

test('objects are validated: a schema violation is a typed error naming the object', () => {
  const bad = new Deployment({ metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'a', ports: [{ containerPort: 'http' as never }] }] } } } });
  assert.throws(() => validateObject(bad as never, 'webhook.yaml'), /webhook.yaml: Deployment x fails schema validation: .*containerPort/);
});


test('coffer manifests: --namespace and --values; bad values exit 2', async () => {
  const r = await run(['manifests', '--namespace', 'tee-system']);
  assert.equal(r.code, 0, r.err);
  const objs = docs(r.out);
  assert.ok(objs.length > 30);
  assert.equal(find(objs, 'Namespace')[0].metadata.name, 'tee-system');
  for (const o of objs) if (o.metadata.namespace) assert.equal(o.metadata.namespace, 'tee-system', key(o));
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-values-'));
  const vf = join(dir, 'v.yaml');
  writeFileSync(vf, 'attestation: {enabled: false}\nwebhook: {timeoutSeconds: 3}\n');
  const v = await run(['manifests', '--values', vf]);
  assert.equal(v.code, 0, v.err);
  assert.equal(find(docs(v.out), 'Service', 'coffer-attestation').length, 0);
  assert.equal(find(docs(v.out), 'MutatingWebhookConfiguration')[0].webhooks[0].timeoutSeconds, 3);
  for (const [text, re] of [['webhok: {}', /unknown setting/], ['webhook: {replicas: "2"}', /must be a number/], ['webhook: {timeoutSeconds: 40}', /1..30/], ['namespace: kube-system', /own namespace/], ['attestation: {kekSecret: "Bad Name"}', /kekSecret.*not a Secret name/], ['attestation: {storageSize: "lots"}', /storageSize.*not a quantity/]] as const) {
    writeFileSync(vf, text);
    const b = await run(['manifests', '--values', vf]);
    assert.equal(b.code, 2, text);
    assert.match(b.err, re);
  }
  assert.equal((await run(['manifests', '--namespace', 'Bad_NS'])).code, 2);
});

test('attestation Deployment: listens on the pod IP and probes a path the service serves', async () => {
  const { buildAttestationApp } = await import('../../../src/attestation/index.js');
  const { tempStore } = await import('../../support/service.js');
  const dep = buildManifests().flatMap((f) => f.objects).find((o: any) => o.kind === 'Deployment' && o.metadata.name === 'coffer-attestation') as any;
  const c = dep.spec.template.spec.containers[0];
  const host = c.args[c.args.indexOf('--host') + 1];
  assert.ok(c.args.includes('--host') && host !== '127.0.0.1' && host !== 'localhost', `attestation must not listen on loopback only: ${c.args.join(' ')}`);
  const ts = tempStore();
  const { app } = await buildAttestationApp({ store: ts.store, adminKeys: [] });
  try {
    const r = await app.inject({ method: 'GET', url: c.readinessProbe.httpGet.path });
    assert.equal(r.statusCode, 200, `readiness probe ${c.readinessProbe.httpGet.path} must be served`);
  } finally {
    await app.close();
    await ts.cleanup();
  }
});

test('attestation Deployment: KEK from a Secret (never beside the data), data on a PVC, store URL from an optional Secret; the args work', async () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  const dep = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'coffer-attestation');
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(dep.spec.strategy.type, 'Recreate', 'one pod at a time on the ReadWriteOnce data volume');
  const arg = (f: string) => c.args[c.args.indexOf(f) + 1];
  const mountOf = (path: string) => c.volumeMounts.find((m: any) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
  const volume = (name: string) => pod.volumes.find((v: any) => v.name === name);
  const kekVol = volume(mountOf(arg('--kek-file')).name);
  assert.equal(kekVol.secret.secretName, DEFAULT_VALUES.attestation.kekSecret);
  assert.notEqual(kekVol.secret.optional, true, 'no KEK Secret, no pod: a key is never generated next to the database');
  assert.ok(mountOf(arg('--kek-file')).readOnly);
  const dataVol = volume(mountOf(arg('--data')).name);
  const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === dataVol.persistentVolumeClaim.claimName);
  assert.ok(pvc, 'the data volume is a PersistentVolumeClaim the manifests create');
  assert.equal(pvc.spec.resources.requests.storage, DEFAULT_VALUES.attestation.storageSize);
  const storeEnv = c.env.find((e: any) => e.name === 'COFFER_STORE_URL');
  assert.deepEqual(storeEnv.valueFrom.secretKeyRef, { name: DEFAULT_VALUES.attestation.storeSecret, key: 'url', optional: true });
  // The container's own args, with its paths mapped to temp dirs, start the service: the KEK is read from the
  // Secret file, none is created in the data dir, and the store named by COFFER_STORE_URL is the one used.
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { randomBytes } = await import('node:crypto');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-pod-'));
  const map = (a: string) =>
    a.replace('/var/lib/coffer', join(dir, 'data')).replace('/etc/coffer/kek', join(dir, 'kek')).replace('/etc/coffer/tls', join(dir, 'tls')).replace('/etc/coffer/tpm-ca', join(dir, 'tpm-ca'))
      .replace('/etc/coffer/admin-keys', join(dir, 'admin-keys')).replace('/etc/coffer/node-trust-audit', join(dir, 'audit'));
  // The mounted Secret and ConfigMap: a serving certificate for the Service name and a TPM manufacturer CA.
  assert.equal(volume(mountOf(arg('--tls-cert')).name).secret.secretName, 'coffer-services-tls');
  assert.equal(volume(mountOf(arg('--tpm-ca-dir')).name).configMap.name, DEFAULT_VALUES.attestation.tpmCaConfigMap);
  assert.equal(arg('--public-url'), 'https://coffer-attestation.coffer-system.svc', 'token issuer = the in-cluster URL');
  const { createTestCa } = await import('../../support/tls.js');
  const ca = await createTestCa();
  const leaf = await ca.issue({ dns: ['coffer-attestation.coffer-system.svc', 'localhost'] });
  mkdirSync(join(dir, 'tls'));
  writeFileSync(join(dir, 'tls', 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls', 'tls.key'), leaf.keyPem);
  mkdirSync(join(dir, 'tpm-ca'));
  writeFileSync(join(dir, 'tpm-ca', 'manufacturer.pem'), ca.certPem);
  mkdirSync(join(dir, 'kek'));
  writeFileSync(join(dir, 'kek', 'kek'), randomBytes(32).toString('hex'), { mode: 0o440 }); // openssl rand -hex 32
  // The admin-keys ConfigMap (admin.pub) and the public half of the controller's audit key (the Secret's public.pem).
  const { generateKeyPairSync } = await import('node:crypto');
  assert.equal(volume(mountOf(arg('--admin-keys')).name).configMap.name, DEFAULT_VALUES.attestation.adminKeysConfigMap);
  assert.deepEqual(volume(mountOf(arg('--node-trust-audit-key')).name).secret, { secretName: DEFAULT_VALUES.nodeTrust.auditKeySecret, items: [{ key: 'public.pem', path: 'public.pem' }] }, 'the service never mounts the private key.pem');
  mkdirSync(join(dir, 'admin-keys'));
  writeFileSync(join(dir, 'admin-keys', 'admin.pub'), generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
  mkdirSync(join(dir, 'audit'));
  writeFileSync(join(dir, 'audit', 'public.pem'), generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }));
  const args = c.args.map(map).map((a: string, i: number, all: string[]) => (all[i - 1] === '--port' ? '0' : all[i - 1] === '--host' ? '127.0.0.1' : a));
  let server: CofferServer | undefined;
  try {
    server = await spawnCofferServer(args, { env: { COFFER_KEK: '', COFFER_STORE_URL: join(dir, 'elsewhere.db') } });
    const { url } = server;
    const out = server.stdout();
    assert.match(url, /^https:/);
    const { get } = await import('node:https');
    const getJson = (path: string) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        get(`${url}${path}`, { ca: ca.certPem, servername: 'coffer-attestation.coffer-system.svc' }, (r) => {
          let b = '';
          r.on('data', (d) => (b += d));
          r.on('end', () => resolve({ status: r.statusCode!, body: b ? JSON.parse(b) : undefined }));
        }).on('error', reject);
      });
    assert.equal(c.readinessProbe.httpGet.scheme, 'HTTPS');
    assert.equal((await getJson(c.readinessProbe.httpGet.path)).status, 200, 'readiness over TLS with the services certificate');
    assert.equal((await getJson('/.well-known/openid-configuration')).body.issuer, 'https://coffer-attestation.coffer-system.svc');
    assert.match(out, /TPM AK enrolment .*1 CA certificate/);
    assert.match(out, /store from \$COFFER_STORE_URL/);
    assert.match(out, /1 admin public key\(s\) from --admin-keys/);
    assert.match(out, /EAR tokens +valid 300 s/);
    assert.match(out, /node-trust audit .*\/v1\/node-trust\/audit/);
    assert.ok(!existsSync(join(dir, 'data', 'keys', 'kek')), 'no KEK written beside the data');
    assert.ok(!existsSync(join(dir, 'data', 'coffer.db')) || statSync(join(dir, 'data', 'coffer.db')).size === 0, 'the SQLite file in the data dir is not the store');
    assert.ok(statSync(join(dir, 'elsewhere.db')).size > 0, 'the store is the one COFFER_STORE_URL names');
  } finally {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('attestation.replicas > 1: every pod on PostgreSQL (store Secret required), no ReadWriteOnce volume, rolling updates — same in the chart', () => {
  const values = mergeValues({ attestation: { replicas: 3 } });
  const objs = buildManifests(values).flatMap((f) => f.objects) as any[];
  const dep = find(objs, 'Deployment', 'coffer-attestation')[0];
  assert.equal(dep.spec.replicas, 3);
  assert.equal(dep.spec.strategy.type, 'RollingUpdate');
  const pod = dep.spec.template.spec;
  assert.deepEqual(pod.containers[0].env.find((e: any) => e.name === 'COFFER_STORE_URL').valueFrom.secretKeyRef, { name: DEFAULT_VALUES.attestation.storeSecret, key: 'url' }, 'not optional: no SQLite fallback with several replicas');
  assert.ok(!pod.volumes.some((v: any) => v.persistentVolumeClaim), 'no PVC mounted');
  assert.deepEqual(find(objs, 'PersistentVolumeClaim').map((p) => p.metadata.name), ['coffer-kbs-data'], 'only the key broker keeps a volume');
  assert.equal(find(objs, 'PodDisruptionBudget', 'coffer-attestation').length, 1);
  // One replica: the SQLite shape.
  const single = find(buildManifests().flatMap((f) => f.objects) as any[], 'Deployment', 'coffer-attestation')[0];
  assert.equal(single.spec.strategy.type, 'Recreate');
  assert.equal(single.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.optional, true);
  // The chart's `if gt (int .Values.attestation.replicas) 1` renders the same objects as the generator.
  const chart = helmChartFiles();
  const render = (vals: unknown) => [...chart].filter(([n]) => n.startsWith('templates/')).flatMap(([n, t]) => docs(renderHelmSubset(t, vals, n)));
  assert.match(chart.get('templates/attestation.yaml')!, /\{\{- if gt \(int \.Values\.attestation\.replicas\) 1 \}\}/);
  const expected = JSON.parse(JSON.stringify(buildManifests(values).filter((f) => f.file !== 'crds.yaml').flatMap((f) => f.objects)));
  assert.deepEqual(byKey(render(JSON.parse(JSON.stringify(values)))), byKey(expected));
});

test('in-cluster services: key broker deployed, both services and the report endpoint behind TLS from one services certificate, issuer = in-cluster URL', () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  const ns = DEFAULT_VALUES.namespace;
  for (const [name, cmd] of [['coffer-attestation', 'attestation'], ['coffer-kbs', 'kbs']]) {
    const c = find(objs, 'Deployment', name)[0].spec.template.spec.containers[0];
    const arg = (f: string) => c.args[c.args.indexOf(f) + 1];
    assert.equal(c.args[0], cmd);
    assert.equal(arg('--public-url'), `https://${name}.${ns}.svc`);
    assert.equal(arg('--tls-cert'), '/etc/coffer/tls/tls.crt');
    assert.equal(c.readinessProbe.httpGet.scheme, 'HTTPS');
    const svc = find(objs, 'Service', name)[0];
    assert.deepEqual(svc.spec.ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
  }
  // The controller: issues the services certificate (self-signed mode), verifies tokens against the in-cluster
  // service over TLS, serves the report endpoint behind a Service; readiness = the leader's listener.
  const ctl = find(objs, 'Deployment', 'coffer-controller')[0].spec.template.spec;
  const a = ctl.containers[0].args;
  const arg = (f: string) => a[a.indexOf(f) + 1];
  assert.equal(arg('--attestation-url'), `https://coffer-attestation.${ns}.svc`);
  assert.equal(arg('--attestation-ca'), '/etc/coffer/services-tls/ca.crt');
  assert.equal(arg('--serving-secret'), 'coffer-services-tls');
  assert.deepEqual(arg('--serving-services').split(','), ['coffer-attestation', 'coffer-kbs', 'coffer-node-trust']);
  assert.equal(arg('--node-trust-listen'), `0.0.0.0:${DEFAULT_VALUES.nodeTrust.port}`);
  assert.deepEqual(ctl.containers[0].readinessProbe.httpGet, { path: '/readyz', port: 'reports', scheme: 'HTTPS' });
  assert.deepEqual(find(objs, 'Service', 'coffer-node-trust')[0].spec.ports, [{ name: 'https', port: 443, targetPort: 'reports', protocol: 'TCP' }]);
  // The agents post to exactly these URLs.
  const attest = find(objs, 'DaemonSet', 'coffer-agent-attest')[0].spec.template.spec.containers[0];
  const aa = (f: string) => attest.args[attest.args.indexOf(f) + 1];
  assert.equal(aa('--attestation-url'), `https://coffer-attestation.${ns}.svc`);
  assert.equal(aa('--controller-url'), `https://coffer-node-trust.${ns}.svc`);
  assert.deepEqual(attest.env.find((e: any) => e.name === 'NODE_NAME').valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  // cert-manager mode: a Certificate for the same Secret and names.
  const cm = buildManifests(mergeValues({ certManager: { enabled: true } })).flatMap((f) => f.objects) as any[];
  const cert = find(cm, 'Certificate', 'coffer-services-tls')[0];
  assert.equal(cert.spec.secretName, 'coffer-services-tls');
  for (const n of ['coffer-attestation', 'coffer-kbs', 'coffer-node-trust']) assert.ok(cert.spec.dnsNames.includes(`${n}.${ns}.svc`), n);
});

test("node trust guard: the webhook's --node-trust-writer and the VAP name the controller's ServiceAccount, in any namespace", () => {
  const objs = buildManifests(mergeValues({ namespace: 'secure' })).flatMap((f) => f.objects) as any[];
  const ctlSa = find(objs, 'Deployment', 'coffer-controller')[0].spec.template.spec.serviceAccountName;
  const user = `system:serviceaccount:secure:${ctlSa}`;
  const w = find(objs, 'Deployment', 'coffer-webhook')[0].spec.template.spec.containers[0].args;
  assert.equal(w[w.indexOf('--node-trust-writer') + 1], user);
  assert.deepEqual(find(objs, 'ValidatingAdmissionPolicy')[0].spec.matchConditions, [{ name: 'not-the-controller', expression: `request.userInfo.username != '${user}'` }]);
  const entry = find(objs, 'ValidatingWebhookConfiguration')[0].webhooks.find((x: any) => x.name === 'nodes.coffer.dev');
  assert.equal(entry.matchConditions[0].expression, `request.userInfo.username != '${user}'`);
  assert.match(entry.matchConditions[1].expression, /startsWith\('trust\.coffer\.dev\/'\)/);
});

test('new values are checked', () => {
  assert.throws(() => mergeValues({ nodeTrust: { attestInterval: 'soon' } }), /nodeTrust\.attestInterval/);
  assert.throws(() => mergeValues({ kbs: { port: 80 } }), /kbs\.port/);
  assert.throws(() => mergeValues({ attestation: { tpmCaConfigMap: 'Not_A_Name' } }), /tpmCaConfigMap/);
  assert.throws(() => renderHelmSubset('{{- if gt (int .Values.nope) 1 }}\n{{- end }}', DEFAULT_VALUES), /not defined/);
});

test('webhook.images.trustedRootConfigMap: mounts the ConfigMap and passes --trusted-root (keyless signers verify in-cluster); off by default', () => {
  const webhookPod = (vals: ReturnType<typeof mergeValues>) => (buildManifests(vals).flatMap((f) => f.objects) as any[]).find((o) => o.kind === 'Deployment' && o.metadata.name === 'coffer-webhook').spec.template.spec;
  const off = webhookPod(DEFAULT_VALUES);
  assert.ok(!off.containers[0].args.includes('--trusted-root'));
  assert.ok(!off.volumes.some((v: any) => v.configMap));
  const vals = mergeValues({ webhook: { images: { trustedRootConfigMap: 'sigstore-trusted-root' } } });
  const pod = webhookPod(vals);
  const c = pod.containers[0];
  const file = c.args[c.args.indexOf('--trusted-root') + 1];
  const mount = c.volumeMounts.find((m: any) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount?.readOnly, `${file} is on a read-only mount`);
  const vol = pod.volumes.find((v: any) => v.name === mount.name);
  assert.equal(vol.configMap.name, 'sigstore-trusted-root');
  assert.notEqual(vol.configMap.optional, true, 'a webhook told to use a trusted root it cannot read must not start');
  assert.deepEqual(vol.configMap.items, [{ key: 'trusted_root.json', path: file.slice(mount.mountPath.length + 1) }]);
  // The Helm chart's conditional renders the same objects.
  const chart = helmChartFiles();
  const rendered = [...chart].filter(([n]) => n.startsWith('templates/')).flatMap(([n, t]) => docs(renderHelmSubset(t, JSON.parse(JSON.stringify(vals)), n)));
  const expected = JSON.parse(JSON.stringify(buildManifests(vals).flatMap((f) => f.objects).filter((o: any) => o.kind !== 'CustomResourceDefinition')));
  assert.deepEqual(byKey(rendered), byKey(expected));
  assert.throws(() => mergeValues({ webhook: { images: { trustedRootConfigMap: 'Not_A_Name' } } }), /trustedRootConfigMap: 'Not_A_Name' is not a ConfigMap name/);
  assert.throws(() => mergeValues({ webhook: { images: { trustedRootConfigMap: 7 } } }), /must be a string/);
});

test('TPM users run unprivileged: coffer.dev/tpm requested, capabilities dropped, read-only root; the plugin and the helper mount only what they need', () => {
  const objs = buildManifests().flatMap((f) => f.objects) as any[];
  const ds = (n: string) => find(objs, 'DaemonSet', n)[0].spec.template.spec;
  for (const name of ['coffer-agent-attest', 'coffer-quote-helper']) {
    const spec = ds(name);
    const c = spec.containers[0];
    assert.equal(c.resources.limits['coffer.dev/tpm'], '1', `${name} requests a TPM unit`);
    assert.equal(c.resources.requests['coffer.dev/tpm'], '1');
    assert.equal(c.securityContext.privileged, undefined);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(spec.automountServiceAccountToken, false);
    assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.tpm': 'true' });
    const arg = (f: string) => c.args[c.args.indexOf(f) + 1];
    assert.equal(arg('--tpm-device'), '/dev/tpmrm0');
    assert.equal(arg('--event-log'), '/run/coffer/tpm0/binary_bios_measurements', 'where the plugin mounts the event log');
  }
  // The helper: its socket directory (the one the webhook gives pods) is its only host path.
  const helper = ds('coffer-quote-helper');
  assert.deepEqual(helper.volumes.map((v: any) => [v.hostPath.path, v.hostPath.type]), [[DEFAULT_VALUES.admission.quoteSocketDir, 'DirectoryOrCreate']]);
  assert.deepEqual(helper.containers[0].args.slice(0, 4), ['agent', 'quote-helper', '--socket-dir', helper.containers[0].volumeMounts[0].mountPath]);
  // The plugin: the kubelet's directory (rw), host /dev and securityfs read-only for presence checks; no API access.
  const plugin = ds('coffer-agent-tpm');
  assert.deepEqual(plugin.volumes.map((v: any) => v.hostPath.path), ['/var/lib/kubelet/device-plugins', '/dev', '/sys/kernel/security']);
  for (const m of plugin.containers[0].volumeMounts) if (m.name !== 'device-plugins') assert.equal(m.readOnly, true, `${m.name} read-only`);
  assert.equal(plugin.containers[0].securityContext.privileged, undefined);
  assert.deepEqual(plugin.containers[0].args.slice(0, 4), ['agent', 'tpm-device-plugin', '--resource', 'coffer.dev/tpm']);
  assert.equal(plugin.automountServiceAccountToken, false);
  // The quote helper can be turned off on its own.
  const off = buildManifests(mergeValues({ agent: { quoteHelper: { enabled: false } } })).flatMap((f) => f.objects) as any[];
  assert.equal(find(off, 'DaemonSet', 'coffer-quote-helper').length, 0);
  assert.equal(find(off, 'DaemonSet', 'coffer-agent-tpm').length, 1);
});

test('one admin key set and the node-trust audit key: every attestation replica and the key broker mount the same ConfigMap; the controller alone gets the private audit key; --token-ttl from values', () => {
  for (const replicas of [1, 3]) {
    const objs = buildManifests(mergeValues({ attestation: { replicas, tokenTtl: '10m' } })).flatMap((f) => f.objects) as any[];
    for (const name of ['coffer-attestation', 'coffer-kbs']) {
      const pod = find(objs, 'Deployment', name)[0].spec.template.spec;
      const c = pod.containers[0];
      const arg = (f: string) => c.args[c.args.indexOf(f) + 1];
      assert.equal(arg('--admin-keys'), '/etc/coffer/admin-keys/admin.pub', name);
      assert.equal(arg('--token-ttl'), '10m');
      const vol = pod.volumes.find((v: any) => v.name === c.volumeMounts.find((m: any) => m.mountPath === '/etc/coffer/admin-keys').name);
      assert.deepEqual(vol.configMap, { name: 'coffer-admin-keys', items: [{ key: 'admin.pub', path: 'admin.pub' }] }, 'required: no replica falls back to a key of its own');
      assert.equal(c.args.includes('--node-trust-audit-key'), name === 'coffer-attestation', 'the audit endpoint is the attestation service\'s');
    }
    const ctl = find(objs, 'Deployment', 'coffer-controller')[0].spec.template.spec;
    const a = ctl.containers[0].args;
    assert.equal(a[a.indexOf('--node-trust-audit-key') + 1], '/etc/coffer/node-trust-audit/key.pem');
    assert.deepEqual(ctl.volumes.find((v: any) => v.name === 'audit-key').secret, { secretName: 'coffer-node-trust-audit', items: [{ key: 'key.pem', path: 'key.pem' }], defaultMode: 0o440 });
    const rbac = find(objs, 'ClusterRole', 'coffer-controller')[0].rules.find((r: any) => r.resources.includes('events'));
    assert.ok(rbac.verbs.includes('list'), 'the restarted controller lists its Events to re-deliver audit records');
  }
  // The chart renders the same (values.yaml is generated from the defaults).
  const chart = helmChartFiles();
  const vals = JSON.parse(JSON.stringify(mergeValues({ attestation: { replicas: 2 } })));
  const rendered = [...chart].filter(([n]) => n.startsWith('templates/')).flatMap(([n, t]) => docs(renderHelmSubset(t, vals, n)));
  const expected = JSON.parse(JSON.stringify(buildManifests(mergeValues({ attestation: { replicas: 2 } })).filter((f) => f.file !== 'crds.yaml').flatMap((f) => f.objects)));
  assert.deepEqual(byKey(rendered), byKey(expected));
  assert.throws(() => mergeValues({ attestation: { adminKeysConfigMap: 'No_Name' } }), /adminKeysConfigMap/);
  assert.throws(() => mergeValues({ nodeTrust: { auditKeySecret: '' } }), /auditKeySecret/);
  assert.throws(() => mergeValues({ attestation: { tokenTtl: '90s' } }), /at least twice nodeTrust.attestInterval/);
  assert.throws(() => mergeValues({ attestation: { tokenTtl: '25h' } }), /at most 24h/);
  assert.throws(() => mergeValues({ attestation: { tokenTtl: '0s' } }), /tokenTtl/);
});
