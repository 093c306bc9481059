/**
 * The dashboard's cluster view: `coffer up --kubeconfig` against the fake kube-apiserver holding a node in each trust
 * state. The view's contents over HTTP, the overview's node counts, and its bounds: read-only GETs, capped lists
 * reported as truncated, a deadline on a server that never answers, a cap on answer size, a few seconds of cache.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { FLEET, putFleet, writeKubeconfig } from '../support/cluster-fixture.js';
import { makeNode } from '../support/k8s-objects.js';
import { KubeRest } from '../../src/k8s/kube-rest.js';
import { ClusterViewSource, restClusterReader, type ClusterView } from '../../src/k8s/cluster-view.js';
import { loadKubeConfig } from '../../src/cli/kubeconfig.js';

let dir: string;
let api: FakeApiServer;
let kubeconfig: string;
const calls: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'coffer-ui-cluster-'));
  api = await startFakeApiServer({ namespaces: ['apps'] });
  putFleet(api);
  api.beforeRequest = (method, url) => void calls.push(`${method} ${url}`);
  kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, api.url);
});
after(async () => {
  await api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function restFor(server: string, limits: { timeoutMs?: number; maxBytes?: number } = {}) {
  const f = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
  writeKubeconfig(f, server);
  return KubeRest.fromKubeConfig(await loadKubeConfig(f, {}), 'test', limits);
}

describe('coffer up --kubeconfig: the cluster view over HTTP', () => {
  let server: CofferServer;
  let admin: string;
  let data: string;

  before(async () => {
    data = join(dir, 'data');
    server = await spawnCofferServer(['up', '--dev', '--port', '0', '--data', data, '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off', '--kubeconfig', kubeconfig], { timeoutMs: 120_000 });
    admin = (await cli(['admin-token', '--data', data])).out.trim();
  });
  after(() => server?.kill());

  const get = async (path: string, token = admin) => {
    const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, path);
    return (await r.json()) as any;
  };

  test('nodes in each trust state with TEE, TCB, expiry, runtime classes; pods per isolation level; edge nodes', async () => {
    const c = (await get('/v1/dashboard/cluster')) as ClusterView;
    assert.equal(c.available, true);
    assert.equal(c.source, api.url);
    assert.deepEqual(c.counts, FLEET.counts);
    assert.deepEqual(c.pods, FLEET.pods);
    assert.deepEqual(c.edge, FLEET.edge);
    assert.deepEqual(c.truncated, { nodes: false, pods: false, runtimeClasses: false, nodesShown: false });
    // Untrusted first, so a long list still shows what needs attention.
    assert.deepEqual(c.nodes.map((n) => [n.name, n.trust]), [['tpm-node-bad', 'untrusted'], ['sgx-node-old', 'expired'], ['plain-node', 'unknown'], ['snp-node-1', 'trusted'], ['tdx-node-1', 'trusted']]);
    const byName = Object.fromEntries(c.nodes.map((n) => [n.name, n]));
    assert.deepEqual([byName['tdx-node-1'].tee, byName['tdx-node-1'].tcbStatus, byName['tdx-node-1'].runtimeClasses, byName['tdx-node-1'].confidentialPods, byName['tdx-node-1'].autonomy], ['tdx', 'UpToDate', ['kata-cc-tdx'], 2, 'connected']);
    assert.deepEqual([byName['snp-node-1'].advisories, byName['snp-node-1'].autonomy], [['AMD-SB-3019'], 'autonomous']);
    assert.equal(byName['tpm-node-bad'].taint, 'coffer.dev/untrusted:NoSchedule');
    assert.match(byName['tpm-node-bad'].reason ?? '', /pcr 7/);
    assert.ok(Date.parse(byName['sgx-node-old'].expiresAt!) < Date.now());
    assert.deepEqual(c.runtimeClasses, [{ name: 'kata-cc-snp', handler: 'kata-qemu-snp', nodes: 1 }, { name: 'kata-cc-tdx', handler: 'kata-qemu-tdx', nodes: 1 }]);
    // Nothing from the annotations beyond the trust record: no token ids in the view.
    assert.ok(!JSON.stringify(c).includes('tok-'), 'token ids are not part of the view');
  });

  test('the overview counts trusted vs untrusted nodes (expired counts as untrusted there)', async () => {
    const o = await get('/v1/dashboard/overview');
    assert.deepEqual({ ...o.nodes, at: undefined }, { available: true, at: undefined, ...FLEET.counts });
  });

  test('a viewer token reads it; no session, no view (401)', async () => {
    const v = (await cli(['admin-token', '--data', data, '--viewer'])).out.trim();
    assert.equal((await get('/v1/dashboard/cluster', v)).available, true);
    assert.equal((await fetch(`${server.url}/v1/dashboard/cluster`)).status, 401);
  });

  test('read-only and cached: page loads within the cache time cost no further API calls', async () => {
    await new Promise((r) => setTimeout(r, 5_100)); // past the 5 s cache of the earlier tests
    calls.length = 0;
    await Promise.all(Array.from({ length: 10 }, () => get('/v1/dashboard/cluster')));
    await get('/v1/dashboard/overview');
    assert.deepEqual(calls.map((c) => c.replace(/\?.*/, '')).sort(), ['GET /api/v1/nodes', 'GET /api/v1/pods', 'GET /apis/node.k8s.io/v1/runtimeclasses']);
    assert.ok(calls.every((c) => /[?&]limit=\d+/.test(c)), `every list is capped: ${calls.join(', ')}`);
  });
});

describe('cluster view bounds', () => {
  test('lists are capped: a larger cluster is reported truncated, never paged through', async () => {
    const big = await startFakeApiServer();
    try {
      for (let i = 0; i < 12; i++) big.put('nodes', makeNode(`n-${String(i).padStart(2, '0')}`));
      const rest = await restFor(big.url);
      const src = new ClusterViewSource({ read: restClusterReader(rest, { maxNodes: 10 }), source: big.url, maxNodesShown: 4 });
      const v = (await src.get()) as ClusterView;
      rest.close();
      assert.equal(v.available, true);
      assert.equal(v.counts.total, 10);
      assert.equal(v.nodes.length, 4);
      assert.deepEqual(v.truncated, { nodes: true, pods: false, runtimeClasses: false, nodesShown: true });
    } finally {
      await big.close();
    }
  });

  test('an API server that never answers: a typed one-line error within the deadline, cached, not retried per load', async () => {
    let hits = 0;
    const silent: Server = createServer(() => void hits++); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const rest = await restFor(url, { timeoutMs: 300 });
      let now = 1_000_000;
      const src = new ClusterViewSource({ read: restClusterReader(rest), source: url, clock: () => now, ttlMs: 5_000 });
      const t0 = Date.now();
      const v = await src.get();
      assert.ok(Date.now() - t0 < 5_000, 'bounded by the deadline');
      assert.equal(v.available, false);
      assert.match(v.available ? '' : v.error, /^cannot read the cluster: timeout/);
      const seen = hits;
      now += 1_000;
      assert.equal((await src.get()).available, false);
      assert.equal(hits, seen, 'the failure is cached too');
      rest.close();
      silent.closeAllConnections();
    } finally {
      await new Promise((r) => silent.close(r));
    }
  });

  test('an answer larger than the cap is refused, not buffered', async () => {
    const rest = await restFor(api.url, { maxBytes: 2_000 });
    const v = await new ClusterViewSource({ read: restClusterReader(rest), source: api.url }).get();
    rest.close();
    assert.equal(v.available, false);
    assert.match(v.available ? '' : v.error, /larger than 2000 bytes|cut short/);
  });

  test('concurrent loads share one read', async () => {
    let reads = 0;
    const src = new ClusterViewSource({ read: async () => (reads++, { nodes: [], pods: [], runtimeClasses: [], truncated: { nodes: false, pods: false, runtimeClasses: false } }), source: 'x' });
    await Promise.all(Array.from({ length: 20 }, () => src.get()));
    assert.equal(reads, 1);
  });

  test('objects that do not compute (a node without metadata) give the unavailable view, and the next read recovers', async () => {
    let now = 0;
    let objs: any = { nodes: [{ spec: {} }], pods: [], runtimeClasses: [], truncated: { nodes: false, pods: false, runtimeClasses: false } };
    const src = new ClusterViewSource({ read: async () => objs, source: 'x', clock: () => now });
    assert.equal((await src.get()).available, false);
    objs = { ...objs, nodes: [] };
    now += 6_000;
    assert.equal((await src.get()).available, true);
  });
});

describe('coffer up with a bad --kubeconfig', () => {
  test('an unreadable --kubeconfig is a usage error (exit 2) naming the flag; coffer kbs refuses the flag', async () => {
    const data = join(dir, 'data-bad');
    const r = await cli(['up', '--dev', '--port', '0', '--data', data, '--swtpm', 'off', '--kubeconfig', join(dir, 'missing')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--kubeconfig/);
    const k = await cli(['kbs', '--dev', '--port', '0', '--data', data, '--swtpm', 'off', '--kubeconfig', kubeconfig]);
    assert.equal(k.code, 2);
    assert.match(k.err, /does not serve/);
    if (process.env.KUBERNETES_SERVICE_HOST === undefined) {
      const ic = await cli(['up', '--dev', '--port', '0', '--data', data, '--swtpm', 'off', '--kubeconfig', 'in-cluster']);
      assert.equal(ic.code, 2);
      assert.match(ic.err, /in-cluster: not running in a Kubernetes pod/);
    }
  });
});
