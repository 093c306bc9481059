import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { createTestCa } from '../support/tls.js';
import { runCli } from '../../src/cli/run.js';
import { FakeListWatch } from '../k8s/support/fake-list-watch.js';
import { policy, pod } from '../k8s/support/fixtures.js';

async function run(argv: string[]) {
  let err = '';
  const r = await runCli(argv, { out: () => undefined, err: (s) => (err += s) });
  return { code: r.kind === 'exit' ? r.code : -1, err };
}

test('coffer webhook: usage errors exit 2', async () => {
  assert.equal((await run(['webhook'])).code, 2);
  assert.equal((await run(['webhook', '--cert', '/nope', '--key', '/nope'])).code, 2);
  assert.equal((await run(['webhook', '--cert', '/nope', '--key', '/nope', '--port', 'x'])).code, 2);
  assert.equal((await run(['webhook', '--cert', '/nope', '--key', '/nope', '--from-cluster', '--policy', '/p.yaml'])).code, 2);
});

function get(port: number, ca: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', ca, servername: 'localhost', headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('coffer webhook --from-cluster: informers against a list/watch API, ready after sync, policies applied', async () => {
  const fake = new FakeListWatch({
    '/api/v1/namespaces': { kind: 'Namespace', apiVersion: 'v1' },
    '/apis/coffer.dev/v1alpha1/isolationpolicies': { kind: 'IsolationPolicy', apiVersion: 'coffer.dev/v1alpha1' },
    '/apis/coffer.dev/v1alpha1/runtimeprofiles': { kind: 'RuntimeProfile', apiVersion: 'coffer.dev/v1alpha1' },
  });
  const server = await fake.start();
  fake.put('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { tenant: 'yes' } } });
  fake.put('/apis/coffer.dev/v1alpha1/isolationpolicies', policy('tenants', { isolation: 'sandbox', namespaceSelector: { matchLabels: { tenant: 'yes' } } }) as never);
  const ca = await createTestCa();
  const leaf = await ca.issue();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-wh-kube-'));
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: fake, user: u}}]
current-context: c
`);
  const bin = new URL('../../bin/coffer.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'webhook', '--from-cluster', '--kubeconfig', join(dir, 'kubeconfig'), '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr.on('data', (c) => {
        buf += c;
        const m = /"port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${buf}`)));
    });
    const end = Date.now() + 10_000;
    while ((await get(port, ca.certPem, '/readyz')).status !== 200) {
      assert.ok(Date.now() < end, 'never became ready');
      await new Promise((r) => setTimeout(r, 50));
    }
    const review = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'k1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'team', operation: 'CREATE', object: pod() } });
    const raw = await get(port, ca.certPem, '/mutate-v1-pod', review);
    assert.equal(raw.status, 200, raw.body);
    const r = JSON.parse(raw.body);
    assert.equal(r.response.uid, 'k1');
    assert.equal(JSON.parse(r.response.auditAnnotations.decision).policy, 'tenants');
    const unknown = await get(port, ca.certPem, '/mutate-v1-pod', review.replace('"namespace":"team"', '"namespace":"ghost"'));
    assert.equal(unknown.status, 503);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await fake.close();
  }
});

test('coffer webhook serves HTTPS, logs JSON and stops on SIGTERM', async () => {
  const ca = await createTestCa();
  const leaf = await ca.issue();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-wh-cli-'));
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  const bin = new URL('../../bin/coffer.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'webhook', '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr.on('data', (c) => {
        buf += c;
        const m = /"port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${buf}`)));
    });
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/readyz', ca: ca.certPem, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject).end();
    });
    assert.equal(status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
