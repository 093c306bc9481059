// @kubernetes/client-node informers (list + watch with bookmarks) through the edge hub surviving link outages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { spawnFakeApiServer, type FakeApiServerProcess } from '../support/fake-apiserver-process.js';
import { makePod } from '../support/k8s-objects.js';
import { waitFor } from '../support/wait.js';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';

/** A Watch that asks for bookmarks (client-node's ListWatch does not) and records the event types it saw. */
class BookmarkWatch extends k8s.Watch {
  readonly seen: string[] = [];
  override watch(path: string, query: Record<string, unknown>, cb: (phase: string, obj: any, w?: any) => void, done: (err: any) => void) {
    return super.watch(path, { ...query, allowWatchBookmarks: true }, (phase, obj, w) => {
      this.seen.push(phase);
      cb(phase, obj, w);
    }, done);
  }
}

let fake: FakeApiServerProcess;
let hub: EdgeHub;
let kc: k8s.KubeConfig;

async function podApi(server: string) {
  const r = await fetch(`${server}/api/v1/namespaces/ns-0/pods`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(makePod('ns-0', 'pod-extra', 'node-0')) });
  assert.equal(r.status, 201);
}

before(async () => {
  fake = await spawnFakeApiServer({ pods: 6, nodes: 2, bookmarkMs: 200 });
  // client-node 1.x identifies as "node-fetch/1.0": allow-list it like a kubelet for this test.
  hub = new EdgeHub({ upstream: await createUpstream(fake.url), port: 0, healthIntervalMs: 150, probeTimeoutMs: 300, failureThreshold: 2, cacheAgents: ['kubelet', 'node-fetch'], offlineBookmarkMs: 150, nodeName: 'node-0' });
  const { url } = await hub.start();
  kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser({ name: 'edge', server: url, skipTLSVerify: true }, { name: 'kubelet' });
});

after(async () => {
  await hub?.stop();
  await fake?.stop();
});

function podInformer(watch: BookmarkWatch) {
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const fieldSelector = 'spec.nodeName=node-0';
  const lw = new k8s.ListWatch<k8s.V1Pod>('/api/v1/pods', watch, () => api.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
  const events: string[] = [];
  const errors: unknown[] = [];
  lw.on('add', (p) => events.push(`add ${p.metadata?.name}`));
  lw.on('update', (p) => events.push(`update ${p.metadata?.name}`));
  lw.on('delete', (p) => events.push(`delete ${p.metadata?.name}`));
  lw.on('error', (e) => errors.push(e));
  return { lw, events, errors };
}

test('informer lists and watches through the hub, rides out SIGSTOP and SIGKILL outages', async () => {
  const watch = new BookmarkWatch(kc);
  const { lw, events, errors } = podInformer(watch);
  await lw.start();
  try {
    await waitFor('initial list', () => lw.list().length === 3);
    assert.deepEqual(lw.list().map((p) => p.metadata!.name).sort(), ['pod-0', 'pod-2', 'pod-4']);
    await podApi(fake.url);
    await waitFor('watch ADDED through the hub', () => events.includes('add pod-extra'));
    await waitFor('server bookmark through the hub', () => watch.seen.includes('BOOKMARK'));

    // The kubelet reads its own Node (cached for component "kubelet").
    const kubeletGet = await fetch(`${kc.getCurrentCluster()!.server}/api/v1/nodes/node-0`, { headers: { 'user-agent': 'kubelet/v1.32.0' } });
    assert.equal(kubeletGet.status, 200);
    await kubeletGet.arrayBuffer();

    // Outage 1: frozen server. The hub goes offline, the informer's watch stays open with hub bookmarks.
    fake.signal('SIGSTOP');
    await waitFor('hub offline', () => hub.state === 'offline', 5000);
    const before = watch.seen.length;
    await waitFor('offline bookmarks', () => watch.seen.slice(before).filter((t) => t === 'BOOKMARK').length >= 2, 3000);
    assert.equal(lw.list().length, 4, 'informer cache intact');
    assert.ok(!events.some((e) => e.startsWith('delete')), 'no spurious deletes');
    assert.deepEqual(errors, []);

    // Link back: the held watch ends, the informer re-watches from its resourceVersion against the live server.
    fake.signal('SIGCONT');
    await waitFor('hub online', () => hub.state === 'online', 5000);
    const p2 = (await (await fetch(`${fake.url}/api/v1/namespaces/ns-0/pods/pod-2`)).json()) as any;
    p2.metadata.labels.changed = 'yes';
    const put = await fetch(`${fake.url}/api/v1/namespaces/ns-0/pods/pod-2`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p2) });
    assert.equal(put.status, 200);
    await waitFor('update after recovery', () => lw.get('pod-2', 'ns-0')?.metadata?.labels?.changed === 'yes', 5000);

    // Outage 2: the server process dies. The informer keeps its state and no error surfaces.
    await fake.stop('SIGKILL');
    await waitFor('hub offline again', () => hub.state === 'offline', 5000);
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(errors, []);
    assert.equal(lw.list().length, 4);

    // A kubelet that (re)starts during the outage lists from the hub's cache, selector honoured.
    const late = podInformer(new BookmarkWatch(kc));
    await late.lw.start();
    try {
      await waitFor('late informer list from cache', () => late.lw.list().length === 4);
      assert.equal(late.lw.get('pod-2', 'ns-0')?.metadata?.labels?.changed, 'yes', 'cache carries the watched update');
      assert.deepEqual(late.errors, []);
    } finally {
      await late.lw.stop();
    }
  } finally {
    await lw.stop();
  }
});

test('kubelet heartbeats are answered locally while offline; other writes get a 503 Status', async () => {
  assert.equal(hub.state, 'offline');
  const url = kc.getCurrentCluster()!.server;
  const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'node-0', namespace: 'kube-node-lease' }, spec: { holderIdentity: 'node-0', renewTime: new Date().toISOString() } };
  const ua = { 'user-agent': 'kubelet/v1.32.0 (linux/amd64) kubernetes/abc', 'content-type': 'application/json' };
  const put = await fetch(`${url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-0`, { method: 'PUT', headers: ua, body: JSON.stringify(lease) });
  assert.equal(put.status, 200);
  assert.deepEqual(await put.json(), lease);
  const create = await fetch(`${url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`, { method: 'POST', headers: ua, body: JSON.stringify(lease) });
  assert.equal(create.status, 201);
  const otherNode = await fetch(`${url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1`, { method: 'PUT', headers: ua, body: JSON.stringify({ ...lease, metadata: { ...lease.metadata, name: 'node-1' } }) });
  assert.equal(otherNode.status, 503, "only this node's Lease is answered locally");
  const otherCreate = await fetch(`${url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`, { method: 'POST', headers: ua, body: JSON.stringify({ ...lease, metadata: { ...lease.metadata, name: 'node-1' } }) });
  assert.equal(otherCreate.status, 503);
  const notKubelet = await fetch(`${url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-0`, { method: 'PUT', headers: { ...ua, 'user-agent': 'kube-proxy/v1.32' }, body: JSON.stringify(lease) });
  assert.equal(notKubelet.status, 503);
  const podWrite = await fetch(`${url}/api/v1/namespaces/ns-0/pods/pod-0`, { method: 'DELETE', headers: ua });
  assert.equal(podWrite.status, 503);
  const s = (await podWrite.json()) as any;
  assert.equal(s.kind, 'Status');
  assert.equal(s.reason, 'ServiceUnavailable');
  assert.equal(s.code, 503);
  assert.match(s.message, /node is autonomous/);
  // Node status PATCH on the cached node: answered with the patched object (not stored, not replayed).
  const ok = await fetch(`${url}/api/v1/nodes/node-0/status`, { method: 'PATCH', headers: { ...ua, 'content-type': 'application/strategic-merge-patch+json' }, body: JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: '2026-11-23T00:00:00Z' }] } }) });
  assert.equal(ok.status, 200, ok.status === 200 ? "" : await ok.clone().text());
  const node = (await ok.json()) as any;
  assert.equal(node.kind, 'Node');
  assert.equal(node.status.conditions.find((c: any) => c.type === 'Ready').lastHeartbeatTime, '2026-11-23T00:00:00Z');
  assert.equal(node.status.nodeInfo.kubeletVersion, 'v1.32.0', 'strategic merge kept the rest of the status');
  const again = await fetch(`${url}/api/v1/nodes/node-0`, { headers: { 'user-agent': 'kubelet/v1.32.0' } });
  assert.equal(((await again.json()) as any).status.conditions[0].lastHeartbeatTime, '2026-11-01T00:00:00Z', 'local answers never change the cache');
  // Node status PATCH without a cached node to patch: refused rather than invented.
  const patch = await fetch(`${url}/api/v1/nodes/node-9/status`, { method: 'PATCH', headers: { ...ua, 'content-type': 'application/strategic-merge-patch+json' }, body: JSON.stringify({ status: {} }) });
  assert.equal(patch.status, 503);
});
