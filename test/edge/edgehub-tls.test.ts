// The hub talks TLS to the API server with the node's client certificate from a kubeconfig; the fake server
// (child process, HTTPS) rejects requests without a valid client certificate with a 401 Status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnFakeApiServer, type FakeApiServerProcess } from '../support/fake-apiserver-process.js';
import { makeTestPki, writeKubeconfig, type TestPki } from '../support/tls-certs.js';
import { waitFor } from '../support/wait.js';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';

let dir: string;
let pki: TestPki;
let fake: FakeApiServerProcess;
let hub: EdgeHub | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'coffer-edgehub-tls-'));
  pki = await makeTestPki(join(dir, 'pki'));
  fake = await spawnFakeApiServer({ pods: 2, tlsDir: pki.dir });
});
after(async () => {
  await hub?.stop();
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function httpsGet(url: string, opts: https.RequestOptions): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, opts, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(b) }));
      })
      .on('error', reject);
  });
}

test('fake apiserver over HTTPS: 401 Status without a client certificate, 200 with one', async () => {
  assert.match(fake.url, /^https:/);
  const anon = await httpsGet(`${fake.url}/api/v1/pods`, { ca: pki.ca });
  assert.equal(anon.status, 401);
  assert.equal(anon.body.reason, 'Unauthorized');
  const ok = await httpsGet(`${fake.url}/api/v1/pods`, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.items.length, 2);
});

test('edge hub with --kubeconfig: TLS + client certificate upstream, plain HTTP for local clients', async () => {
  const kubeconfig = join(dir, 'kubelet.conf');
  writeKubeconfig(kubeconfig, fake.url, pki);
  hub = new EdgeHub({ upstream: await createUpstream(undefined, kubeconfig), port: 0, healthIntervalMs: 200, probeTimeoutMs: 500, failureThreshold: 2, cacheAgents: ['kubelet'] });
  const { url } = await hub.start();
  assert.equal(hub.state, 'online', 'the /readyz probe authenticated');
  const r = await fetch(`${url}/api/v1/pods`, { headers: { 'user-agent': 'kubelet/v1.32' } });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as any).items.length, 2);
  fake.signal('SIGSTOP');
  try {
    await waitFor('offline', () => hub!.state === 'offline', 5000);
    const off = await fetch(`${url}/api/v1/pods`, { headers: { 'user-agent': 'kubelet/v1.32' } });
    assert.equal(((await off.json()) as any).items.length, 2);
  } finally {
    fake.signal('SIGCONT');
  }
});
