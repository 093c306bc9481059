import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { makeNode, makePod } from '../support/k8s-objects.js';

let s: FakeApiServer;
before(async () => {
  s = await startFakeApiServer({ historySize: 50, bookmarkIntervalMs: 100 });
  s.put('nodes', makeNode('n1'));
  for (let i = 0; i < 7; i++) s.put('pods', makePod('default', `p-${i}`, i % 2 ? 'n1' : 'n2', { tier: i < 3 ? 'web' : 'db' }));
});
after(() => s.close());

async function req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(s.url + path, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, ctype: r.headers.get('content-type'), body: (await r.json()) as any };
}

/** Collects watch lines until `n` events arrived, then aborts. */
function watchEvents(path: string, n: number, timeoutMs = 3000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const out: any[] = [];
    let buf = '';
    const r = http.get(s.url + path, (res) => {
      res.on('data', (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          out.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
          if (out.length >= n) {
            r.destroy();
            resolve(out);
          }
        }
      });
      res.on('end', () => resolve(out));
    });
    r.on('error', () => {});
    setTimeout(() => {
      r.destroy();
      out.length >= n ? resolve(out) : reject(new Error(`only ${out.length} events: ${JSON.stringify(out.map((e) => e.type))}`));
    }, timeoutMs);
  });
}

test('list: kind, resourceVersion, items without TypeMeta, selectors', async () => {
  const r = await req('GET', '/api/v1/namespaces/default/pods?labelSelector=tier%3Dweb&fieldSelector=spec.nodeName%3Dn1');
  assert.equal(r.status, 200);
  assert.equal(r.body.kind, 'PodList');
  assert.equal(r.body.apiVersion, 'v1');
  assert.equal(r.body.metadata.resourceVersion, String(s.store.rv));
  assert.deepEqual(r.body.items.map((p: any) => p.metadata.name), ['p-1']);
  assert.equal(r.body.items[0].kind, undefined);
  const bad = await req('GET', '/api/v1/pods?fieldSelector=spec.bogus%3Dx');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.kind, 'Status');
  assert.match(bad.body.message, /field label not supported: spec.bogus/);
});

test('limit/continue pages are a consistent snapshot; remainingItemCount', async () => {
  const p1 = await req('GET', '/api/v1/pods?limit=3');
  assert.equal(p1.body.items.length, 3);
  assert.equal(p1.body.metadata.remainingItemCount, 4);
  s.put('pods', makePod('default', 'p-55', 'n1')); // sorts into the third page: a live list would show it
  const p2 = await req('GET', `/api/v1/pods?limit=3&continue=${p1.body.metadata.continue}`);
  assert.equal(p2.body.metadata.resourceVersion, p1.body.metadata.resourceVersion);
  const p3 = await req('GET', `/api/v1/pods?limit=3&continue=${p2.body.metadata.continue}`);
  const names = [...p1.body.items, ...p2.body.items, ...p3.body.items].map((p: any) => p.metadata.name);
  assert.deepEqual(names, ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6'], 'snapshot excludes the pod created mid-pagination');
  assert.equal(p3.body.metadata.continue, undefined);
  s.remove('pods', 'default', 'p-55');
});

test('watch from a resourceVersion replays later events; bookmarks; selector transitions', async () => {
  const rv = s.store.rv;
  const pending = watchEvents(`/api/v1/namespaces/default/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&labelSelector=tier%3Dweb`, 4);
  await new Promise((r) => setTimeout(r, 50));
  const p0 = s.store.get('/pods', 'default/p-0')!;
  s.put('pods', { ...p0, metadata: { ...p0.metadata, labels: { tier: 'web', x: '1' } } });
  s.put('pods', { ...p0, metadata: { ...p0.metadata, labels: { tier: 'db' } } }); // leaves the selector → DELETED
  const evs = await pending;
  assert.deepEqual(evs.slice(0, 2).map((e) => e.type), ['MODIFIED', 'DELETED']);
  const bm = evs.find((e) => e.type === 'BOOKMARK');
  assert.ok(bm, 'a bookmark arrives');
  assert.equal(bm.object.kind, 'Pod');
  assert.equal(bm.object.metadata.resourceVersion, String(s.store.rv));
});

test('watch from a compacted resourceVersion: ERROR event with 410 Expired', async () => {
  for (let i = 0; i < 60; i++) s.put('configmaps', { metadata: { name: `c${i}`, namespace: 'default' }, data: { i: String(i) } });
  const evs = await watchEvents('/api/v1/pods?watch=true&resourceVersion=2', 1);
  assert.equal(evs[0].type, 'ERROR');
  assert.equal(evs[0].object.kind, 'Status');
  assert.equal(evs[0].object.code, 410);
  assert.equal(evs[0].object.reason, 'Expired');
});

test('create, conflict on stale resourceVersion, patch flavours, delete with Status errors', async () => {
  const c = await req('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: '1' } });
  assert.equal(c.status, 201);
  assert.ok(c.body.metadata.uid);
  const dup = await req('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'cfg' } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.reason, 'AlreadyExists');
  const noNs = await req('POST', '/api/v1/namespaces/nope/configmaps', { metadata: { name: 'x' } });
  assert.equal(noNs.status, 404);
  const u = await req('PUT', '/api/v1/namespaces/default/configmaps/cfg', { ...c.body, data: { a: '2' } });
  assert.equal(u.status, 200);
  assert.notEqual(u.body.metadata.resourceVersion, c.body.metadata.resourceVersion);
  const stale = await req('PUT', '/api/v1/namespaces/default/configmaps/cfg', { ...c.body, data: { a: '3' } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.reason, 'Conflict');
  const mp = await req('PATCH', '/api/v1/namespaces/default/configmaps/cfg', { data: { b: 'x', a: null } }, { 'content-type': 'application/merge-patch+json' });
  assert.deepEqual(mp.body.data, { b: 'x' });
  const jp = await req('PATCH', '/api/v1/namespaces/default/configmaps/cfg', [{ op: 'add', path: '/data/c', value: 'y' }], { 'content-type': 'application/json-patch+json' });
  assert.deepEqual(jp.body.data, { b: 'x', c: 'y' });
  const node = await req('PATCH', '/api/v1/nodes/n1/status', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, { 'content-type': 'application/strategic-merge-patch+json' });
  assert.equal(node.body.status.conditions.find((x: any) => x.type === 'Ready').status, 'False');
  assert.equal(node.body.status.addresses.length, 2, 'strategic merge keeps other fields');
  const bad = await req('PATCH', '/api/v1/namespaces/default/configmaps/cfg', { data: {} }, { 'content-type': 'application/apply-patch+yaml' });
  assert.equal(bad.status, 415);
  const pc = await req('DELETE', '/api/v1/namespaces/default/configmaps/cfg', { preconditions: { resourceVersion: '1' } });
  assert.equal(pc.status, 409);
  const d = await req('DELETE', '/api/v1/namespaces/default/configmaps/cfg');
  assert.equal(d.status, 200);
  const g = await req('GET', '/api/v1/namespaces/default/configmaps/cfg');
  assert.equal(g.status, 404);
  assert.equal(g.body.message, 'configmaps "cfg" not found');
});

test('pod updates: tolerationSeconds may change, other spec fields may not', async () => {
  const p = (await req('GET', '/api/v1/namespaces/default/pods/p-1')).body;
  const tol = p.spec.tolerations.map((t: any) => ({ ...t, tolerationSeconds: undefined }));
  const ok = await req('PUT', '/api/v1/namespaces/default/pods/p-1', { ...p, spec: { ...p.spec, tolerations: JSON.parse(JSON.stringify(tol)) } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.spec.tolerations[0].tolerationSeconds, undefined);
  const bad = await req('PUT', '/api/v1/namespaces/default/pods/p-1', { ...ok.body, spec: { ...ok.body.spec, nodeName: 'other' } });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.reason, 'Invalid');
  const removeTol = await req('PUT', '/api/v1/namespaces/default/pods/p-1', { ...ok.body, spec: { ...ok.body.spec, tolerations: [] } });
  assert.equal(removeTol.status, 422);
});

test('discovery and Table output', async () => {
  const api = await req('GET', '/api');
  assert.deepEqual(api.body.versions, ['v1']);
  const res = await req('GET', '/apis/coordination.k8s.io/v1');
  assert.equal(res.body.resources[0].name, 'leases');
  const t = await req('GET', '/api/v1/nodes', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  assert.equal(t.body.kind, 'Table');
  assert.deepEqual(t.body.columnDefinitions.filter((c: any) => c.priority === 0).map((c: any) => c.name), ['Name', 'Status', 'Roles', 'Age', 'Version']);
  assert.equal(t.body.rows[0].object.kind, 'PartialObjectMetadata');
  const pb = await fetch(s.url + '/api/v1/pods', { headers: { accept: 'application/vnd.kubernetes.protobuf' } });
  assert.equal(pb.status, 406);
});

test('watch with Table accept (kubectl get -w): each event object is a one-row Table', async () => {
  const rows = await new Promise<any[]>((resolve, reject) => {
    const out: any[] = [];
    let buf = '';
    const r = http.get(s.url + '/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dp-3', { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } }, (res) => {
      assert.equal(res.headers['content-type'], 'application/json;as=Table;v=v1;g=meta.k8s.io');
      res.on('data', (c) => {
        buf += c;
        if (buf.includes('\n')) {
          out.push(JSON.parse(buf.slice(0, buf.indexOf('\n'))));
          r.destroy();
          resolve(out);
        }
      });
    });
    r.on('error', () => {});
    setTimeout(() => reject(new Error('no event')), 2000);
  });
  assert.equal(rows[0].type, 'ADDED');
  assert.equal(rows[0].object.kind, 'Table');
  assert.equal(rows[0].object.rows.length, 1);
  assert.equal(rows[0].object.rows[0].cells[0], 'p-3');
});
