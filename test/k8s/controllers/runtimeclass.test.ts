// The RuntimeClass installer against the fake kube-apiserver: built-in and custom profiles, ownership, handler
// changes, 409 conflicts retried on a fresh read, and a 410 Gone relist; the result read back with kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { waitFor } from '../../support/wait.js';
import { runtimeClassController } from '../../../src/k8s/controllers/runtimeclass.js';
import { desiredRuntimeClass, effectiveProfiles, reconcileRuntimeClass, MANAGED_BY_LABEL } from '../../../src/k8s/controllers/runtimeclass-reconcile.js';
import type { RunningController } from '../../../src/k8s/controllers/types.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';

const run = promisify(execFile);
let fake: FakeApiServer;
let ctl: RunningController;
const logs: { event: string; detail: Record<string, any> }[] = [];
const RC = 'node.k8s.io/runtimeclasses';
const rc = (name: string) => fake.store.get(RC, name);

function profile(name: string, handler: string, memory: string, extra: Record<string, unknown> = {}) {
  return { apiVersion: 'coffer.dev/v1alpha1', kind: 'RuntimeProfile', metadata: { name }, spec: { handler, isolation: 'sandbox', overhead: { podFixed: { memory } }, ...extra } };
}
async function api(method: string, path: string, body?: unknown) {
  const r = await fetch(fake.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as any };
}

before(async () => {
  fake = await startFakeApiServer();
  // Installed by someone else (kata-deploy style): same name as a built-in profile, no managed-by label.
  fake.put('runtimeclasses', { metadata: { name: 'gvisor' }, handler: 'runsc' }, 'node.k8s.io');
  // Owned by Coffer but its profile no longer exists.
  fake.put('runtimeclasses', { metadata: { name: 'old-rt', labels: { [MANAGED_BY_LABEL]: 'coffer' } }, handler: 'old' }, 'node.k8s.io');
  fake.put('runtimeprofiles', profile('edge-vm', 'kata-fc', '100Mi', { scheduling: { nodeSelector: { 'coffer.dev/runtime.edge-vm': 'true' }, tolerations: [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }] } }), 'coffer.dev');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  ctl = await runtimeClassController.start({ kubeConfig: kc, log: (event, detail) => logs.push({ event, detail }) }, {});
});

after(async () => {
  await ctl?.stop();
  await fake?.close();
});

test('reconcile: pure decisions', () => {
  const [p] = builtinRuntimeProfiles().filter((x) => x.metadata.name === 'kata-qemu-tdx');
  const want = desiredRuntimeClass(p);
  assert.deepEqual(reconcileRuntimeClass('kata-qemu-tdx', p, undefined), [{ kind: 'create', name: 'kata-qemu-tdx', object: want }]);
  // The server canonicalises "1.0" to "1": equal by value, nothing to do.
  const stored = { ...want, metadata: { ...want.metadata, resourceVersion: '5', uid: 'u' }, overhead: { podFixed: { memory: '2Gi', cpu: '1' } } };
  assert.deepEqual(reconcileRuntimeClass('kata-qemu-tdx', p, stored), []);
  assert.deepEqual(reconcileRuntimeClass('x', undefined, { metadata: { name: 'x' }, handler: 'h' }), [], 'not ours, no profile: untouched');
  assert.equal(reconcileRuntimeClass('x', p, { metadata: { name: 'x' }, handler: 'h' })[0].kind, 'notOwned');
  assert.equal(effectiveProfiles([], false).size, 0, '--builtin-profiles=false');
  assert.deepEqual(reconcileRuntimeClass('kata-qemu-tdx', undefined, stored).map((a) => a.kind), ['delete'], 'owned, profile gone');
  const acts = reconcileRuntimeClass('kata-qemu-tdx', p, { ...stored, handler: 'other' });
  assert.deepEqual(acts.map((a) => a.kind), ['delete', 'create'], 'handler is immutable');
});

test('built-in and custom profiles become owned RuntimeClasses; foreign classes untouched; orphans removed', async () => {
  await waitFor('classes installed', () => rc('kata-qemu') && rc('edge-vm') && rc('kata-mshv-vm-isolation') && !rc('old-rt')).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(logs)}`);
  });
  const q = rc('kata-qemu')!;
  assert.equal(q.handler, 'kata-qemu');
  assert.deepEqual(q.overhead, { podFixed: { memory: '160Mi', cpu: '250m' } });
  assert.deepEqual(q.scheduling, { nodeSelector: { 'katacontainers.io/kata-runtime': 'true' } });
  assert.equal(q.metadata.labels[MANAGED_BY_LABEL], 'coffer');
  assert.equal(rc('kata-mshv-vm-isolation')!.handler, 'kata');
  const e = rc('edge-vm')!;
  assert.deepEqual(e.scheduling.tolerations, [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }]);
  assert.equal(rc('runc')!.overhead, undefined);
  const g = rc('gvisor')!;
  assert.equal(g.metadata.labels, undefined, 'foreign class not labelled');
  assert.equal(g.metadata.resourceVersion, fake.store.get(RC, 'gvisor')!.metadata.resourceVersion);
  assert.ok(logs.some((l) => l.event === 'runtimeclass_not_owned' && l.detail.runtimeClass === 'gvisor'));
  const { stdout } = await run('kubectl', ['--server', fake.url, 'get', 'runtimeclass', '-l', 'app.kubernetes.io/managed-by=coffer', '--no-headers']);
  const rows = stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '));
  assert.ok(rows.includes('kata-qemu-tdx kata-qemu-tdx') && rows.includes('gvisor') === false && rows.includes('edge-vm kata-fc'), stdout);
});

test('profile changes: overhead update, handler change recreates, deletion removes', async () => {
  const path = '/apis/coffer.dev/v1alpha1/runtimeprofiles/edge-vm';
  let cur = (await api('GET', path)).body;
  assert.equal((await api('PUT', path, { ...cur, spec: { ...cur.spec, overhead: { podFixed: { memory: '200Mi' } } } })).status, 200);
  await waitFor('overhead updated', () => rc('edge-vm')?.overhead?.podFixed?.memory === '200Mi');
  const uid = rc('edge-vm')!.metadata.uid;
  cur = (await api('GET', path)).body;
  assert.equal(cur.metadata.generation, 2);
  await api('PUT', path, { ...cur, spec: { ...cur.spec, handler: 'kata-fc2' } });
  await waitFor('recreated with the new handler', () => rc('edge-vm')?.handler === 'kata-fc2');
  assert.notEqual(rc('edge-vm')!.metadata.uid, uid);
  assert.equal((await api('DELETE', path)).status, 200);
  await waitFor('removed', () => !rc('edge-vm'));
});

test('409 on update: the pass reruns on a fresh read and wins', async () => {
  let raced = false;
  const seen: string[] = [];
  fake.beforeRequest = (method, url) => {
    if (url.startsWith('/apis/node.k8s.io/v1/runtimeclasses/kata-clh')) seen.push(method);
    if (!raced && method === 'PUT' && url.startsWith('/apis/node.k8s.io/v1/runtimeclasses/kata-clh')) {
      raced = true;
      // A concurrent writer (another tool) adds a label just before our update lands.
      const o = rc('kata-clh')!;
      fake.put('runtimeclasses', { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, team: 'infra' } } }, 'node.k8s.io');
    }
  };
  try {
    await api('POST', '/apis/coffer.dev/v1alpha1/runtimeprofiles', profile('kata-clh', 'kata-clh', '512Mi'));
    await waitFor('override applied', () => rc('kata-clh')?.overhead?.podFixed?.memory === '512Mi');
    assert.deepEqual(seen.slice(0, 3), ['PUT', 'GET', 'PUT'], 'conflict, fresh read, retried update');
    assert.equal(rc('kata-clh')!.metadata.labels.team, 'infra', "the other writer's label survives");
    assert.ok(logs.some((l) => l.event === 'runtimeclass_conflict' && l.detail.runtimeClass === 'kata-clh'));
  } finally {
    fake.beforeRequest = undefined;
  }
});

test('410 Gone after compaction: the informer relists and the controller repairs what changed meanwhile', async () => {
  const lists: string[] = [];
  fake.beforeRequest = (method, url) => {
    if (method === 'GET' && url.startsWith('/apis/node.k8s.io/v1/runtimeclasses') && !url.includes('watch')) lists.push(url);
  };
  try {
    const watches = fake.store.watcherCount();
    // While the watches are down: an owned class is deleted behind the controller's back, history is compacted.
    fake.store.dropWatchers();
    fake.remove('runtimeclasses', undefined, 'kata-qemu', 'node.k8s.io');
    fake.put('configmaps', { metadata: { name: 'bump', namespace: 'default' }, data: {} });
    fake.store.compact();
    await waitFor('kata-qemu reinstalled', () => rc('kata-qemu'));
    assert.ok(lists.length >= 1, 'relisted after 410');
    await waitFor('watches back', () => fake.store.watcherCount() >= watches);
  } finally {
    fake.beforeRequest = undefined;
  }
});
