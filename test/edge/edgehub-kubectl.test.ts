// Real kubectl through the edge hub, online and offline, against the fake kube-apiserver run as a child process
// so the link can be cut with SIGSTOP and SIGKILL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnFakeApiServer, type FakeApiServerProcess } from '../support/fake-apiserver-process.js';
import { makePod } from '../support/k8s-objects.js';
import { waitFor } from '../support/wait.js';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';

const KUBECTL = '/usr/bin/kubectl';
const haveKubectl = (() => {
  try {
    readFileSync(KUBECTL);
    return true;
  } catch {
    return false;
  }
})();

let fake: FakeApiServerProcess;
let hub: EdgeHub;
let hubUrl: string;
let dir: string;
const children: ChildProcess[] = [];

async function startHub(server: string): Promise<void> {
  hub = new EdgeHub({ upstream: await createUpstream(server), port: 0, cacheDir: dir, healthIntervalMs: 150, probeTimeoutMs: 300, failureThreshold: 2, cacheAgents: ['kubelet', 'kubectl'], offlineBookmarkMs: 200, flushDelayMs: 20 });
  hubUrl = (await hub.start()).url;
}

let calls = 0;
function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // A fresh discovery cache per call, so offline discovery comes from the hub, not from kubectl's own disk cache.
    execFile(KUBECTL, ['--server', hubUrl, '--request-timeout=5s', '--cache-dir', join(dir, `kubectl-cache-${calls++}`), ...args], { env: { ...process.env, KUBECONFIG: '/dev/null', HOME: dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function createPod(ns: string, name: string) {
  const r = await fetch(`${fake.url}/api/v1/namespaces/${ns}/pods`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(makePod(ns, name, 'node-0')) });
  assert.equal(r.status, 201);
}

before(async () => {
  if (!haveKubectl) return;
  dir = mkdtempSync(join(tmpdir(), 'coffer-edgehub-kubectl-'));
  fake = await spawnFakeApiServer({ pods: 3, nodes: 2 });
  await startHub(fake.url);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await hub?.stop();
  await fake?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('kubectl through the hub online, offline (SIGSTOP, SIGKILL), after a hub restart, and with a torn cache file', { skip: haveKubectl ? false : 'kubectl not installed' }, async (t) => {
  await t.test('online: get pods -A, get nodes', async () => {
    assert.equal(hub.state, 'online');
    const pods = await kubectl('get', 'pods', '-A');
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    for (const n of ['pod-0', 'pod-1', 'pod-2']) assert.match(pods.stdout, new RegExp(`ns-0\\s+${n}\\s+1/1\\s+Running\\s+0`));
    const nodes = await kubectl('get', 'nodes');
    assert.match(nodes.stdout, /node-0\s+Ready\s+<none>\s+\S+\s+v1\.32\.0/);
  });

  let watcher: ChildProcess;
  let watchOut = '';
  let watchExit: Promise<number | null>;
  await t.test('online: get pods -w streams a new pod', async () => {
    watcher = spawn(KUBECTL, ['--server', hubUrl, 'get', 'pods', '-n', 'ns-0', '-w'], { env: { ...process.env, KUBECONFIG: '/dev/null', HOME: dir } });
    children.push(watcher);
    watchExit = new Promise((r) => watcher.once('exit', (code) => r(code)));
    watcher.stdout!.on('data', (c) => (watchOut += c));
    await waitFor('initial rows', () => watchOut.includes('pod-2'));
    await createPod('ns-0', 'pod-live');
    await waitFor('watched pod', () => watchOut.includes('pod-live'));
  });

  await t.test('SIGSTOP: hub goes offline; reads from cache, watch held, writes refused with 503', async () => {
    fake.signal('SIGSTOP');
    await waitFor('offline', () => hub.state === 'offline', 5000);
    const pods = await kubectl('get', 'pods', '-A');
    assert.equal(pods.code, 0, pods.stderr);
    assert.match(pods.stdout, /ns-0\s+pod-live\s+1\/1\s+Running/);
    const nodes = await kubectl('get', 'nodes', '-o', 'name');
    assert.deepEqual(nodes.stdout.trim().split('\n'), ['node/node-0', 'node/node-1']);
    const del = await kubectl('delete', 'pod', '-n', 'ns-0', 'pod-0');
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /ServiceUnavailable.*node is autonomous/);
    assert.equal(watcher.exitCode, null, 'kubectl get -w is still connected');
  });

  await t.test('link back: held watch ends (client re-lists), reads are live again', async () => {
    fake.signal('SIGCONT');
    await waitFor('online', () => hub.state === 'online', 5000);
    assert.equal(await Promise.race([watchExit, new Promise((r) => setTimeout(() => r('still running'), 3000))]), 0);
    await createPod('ns-0', 'pod-after');
    const pods = await kubectl('get', 'pods', '-n', 'ns-0', '-o', 'name');
    assert.ok(pods.stdout.includes('pod/pod-after'));
  });

  await t.test('SIGKILL: offline again, cache still serves', async () => {
    await kubectl('get', 'pods', '-A'); // refresh kubectl's cached view with pod-after
    await fake.stop('SIGKILL');
    await waitFor('offline', () => hub.state === 'offline', 5000);
    const pods = await kubectl('get', 'pods', '-A', '-o', 'name');
    assert.ok(pods.stdout.includes('pod/pod-after'), pods.stdout + pods.stderr);
  });

  await t.test('hub restarted while the server is down serves the disk cache', async () => {
    await hub.stop();
    await startHub(fake.url);
    assert.equal(hub.state, 'offline');
    const pods = await kubectl('get', 'pods', '-A', '-o', 'name');
    assert.equal(pods.code, 0, pods.stderr);
    assert.deepEqual(pods.stdout.trim().split('\n').sort(), ['pod/pod-0', 'pod/pod-1', 'pod/pod-2', 'pod/pod-after', 'pod/pod-live']);
    const nodes = await kubectl('get', 'nodes', '-o', 'name');
    assert.equal(nodes.code, 0, nodes.stderr);
  });

  await t.test('a torn pods cache file is ignored, never served', async () => {
    await hub.stop();
    const p = join(dir, 'kubectl', 'pods.v1.core.json');
    const full = readFileSync(p);
    writeFileSync(p, full.subarray(0, full.length - 10));
    await startHub(fake.url);
    const pods = await kubectl('get', 'pods', '-A');
    assert.notEqual(pods.code, 0);
    assert.match(pods.stderr, /ServiceUnavailable|no cached pods/);
    const nodes = await kubectl('get', 'nodes', '-o', 'name');
    assert.equal(nodes.code, 0, 'other collections still load');
  });
});
