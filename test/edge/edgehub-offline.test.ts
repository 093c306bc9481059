// Offline answers of the hub in detail (in-process fake apiserver, stopped and restarted on the same port).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { makeNode, makePod } from '../support/k8s-objects.js';
import { waitFor } from '../support/wait.js';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';

let fake: FakeApiServer;
let hub: EdgeHub;
let url: string;
let port: number;
const UA = { 'user-agent': 'kubelet/v1.32.0 (linux/amd64) kubernetes/test' };

async function get(path: string, headers: Record<string, string> = {}) {
  const r = await fetch(url + path, { headers: { ...UA, ...headers } });
  return { status: r.status, ctype: r.headers.get('content-type'), body: (await r.json()) as any };
}

/** Reads watch lines until the stream ends or `ms` passes. */
function watchLines(path: string, ms: number): Promise<{ lines: any[]; ended: boolean }> {
  return new Promise((resolve) => {
    const lines: any[] = [];
    let buf = '';
    const req = http.get(url + path, { headers: UA }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
      });
      res.on('end', () => {
        clearTimeout(t);
        resolve({ lines, ended: true });
      });
    });
    const t = setTimeout(() => {
      req.destroy();
      resolve({ lines, ended: false });
    }, ms);
  });
}

before(async () => {
  fake = await startFakeApiServer({ namespaces: ['a', 'b'] });
  port = fake.port;
  fake.put('nodes', makeNode('n1'));
  fake.put('nodes', makeNode('n2'));
  fake.put('pods', makePod('a', 'web-1', 'n1', { tier: 'web' }));
  fake.put('pods', makePod('a', 'db-1', 'n1', { tier: 'db' }));
  fake.put('pods', makePod('b', 'web-2', 'n2', { tier: 'web' }));
  hub = new EdgeHub({ upstream: await createUpstream(fake.url), port: 0, healthIntervalMs: 100, probeTimeoutMs: 300, failureThreshold: 1, cacheAgents: ['kubelet'], offlineBookmarkMs: 100 });
  url = (await hub.start()).url;
});
after(async () => {
  await hub.stop();
  await fake.close();
});

test('offline answers: selectors, kind/apiVersion/resourceVersion, 404 and 503 Status, watches held with bookmarks', async () => {
  const online = await get('/api/v1/pods');
  assert.equal(online.body.items.length, 3);
  const serverRv = online.body.metadata.resourceVersion;
  assert.equal((await get('/api/v1/nodes/n1')).status, 200);
  await fake.close();
  await waitFor('offline', () => hub.state === 'offline');

  const n1 = await get('/api/v1/pods?fieldSelector=spec.nodeName%3Dn1');
  assert.equal(n1.status, 200);
  assert.equal(n1.body.kind, 'PodList');
  assert.equal(n1.body.apiVersion, 'v1');
  assert.equal(n1.body.metadata.resourceVersion, serverRv);
  assert.deepEqual(n1.body.items.map((p: any) => p.metadata.name), ['db-1', 'web-1']);
  const web = await get('/api/v1/pods?labelSelector=tier%20in%20(web)');
  assert.deepEqual(web.body.items.map((p: any) => p.metadata.name), ['web-1', 'web-2']);
  const nsB = await get('/api/v1/namespaces/b/pods');
  assert.deepEqual(nsB.body.items.map((p: any) => p.metadata.name), ['web-2']);
  const one = await get('/api/v1/namespaces/a/pods/web-1');
  assert.equal(one.body.kind, 'Pod');
  assert.equal(one.body.apiVersion, 'v1');
  assert.equal(one.body.spec.nodeName, 'n1');
  const missing = await get('/api/v1/namespaces/a/pods/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual([missing.body.kind, missing.body.reason, missing.body.message], ['Status', 'NotFound', 'pods "nope" not found']);
  const never = await get('/api/v1/namespaces/a/configmaps');
  assert.equal(never.status, 503);
  assert.equal(never.body.reason, 'ServiceUnavailable');
  const badSel = await get('/api/v1/pods?labelSelector=a%20b');
  assert.equal(badSel.status, 400);
  const table = await get('/api/v1/nodes/n1', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  assert.equal(table.body.kind, 'Table');
  assert.equal(table.body.rows[0].cells[0], 'n1');
  const otherComponent = await get('/api/v1/pods', { 'user-agent': 'kube-proxy/v1.32' });
  assert.equal(otherComponent.status, 503, 'each component reads only its own cache');

  // rv=0: current cached state as ADDED, then held; timeoutSeconds honoured.
  const w0 = await watchLines('/api/v1/pods?watch=1&resourceVersion=0&fieldSelector=spec.nodeName%3Dn1&timeoutSeconds=1', 3000);
  assert.ok(w0.ended, 'timeoutSeconds ends the held watch');
  assert.deepEqual(w0.lines.map((l) => `${l.type} ${l.object.metadata.name}`), ['ADDED db-1', 'ADDED web-1']);
  // From a resourceVersion with bookmarks: no events, bookmarks carrying the client's resourceVersion.
  const wb = await watchLines(`/api/v1/pods?watch=1&resourceVersion=${serverRv}&allowWatchBookmarks=true`, 450);
  assert.ok(wb.lines.length >= 2);
  assert.ok(wb.lines.every((l) => l.type === 'BOOKMARK' && l.object.kind === 'Pod' && l.object.metadata.resourceVersion === serverRv));
});

test('held watches end when the link returns; reads are live again', async () => {
  assert.equal(hub.state, 'offline');
  const held = watchLines('/api/v1/pods?watch=1&resourceVersion=5', 5000);
  await new Promise((r) => setTimeout(r, 200));
  fake = await startFakeApiServer({ port, namespaces: ['a'] });
  fake.put('pods', makePod('a', 'fresh', 'n1'));
  const r = await held;
  assert.ok(r.ended, 'the held watch ended on reconnection');
  await waitFor('online', () => hub.state === 'online');
  const live = await get('/api/v1/pods');
  assert.deepEqual(live.body.items.map((p: any) => p.metadata.name), ['fresh']);
  // The relist replaced the cached scope: the pods the new server does not have are gone from the cache too.
  await new Promise((r2) => setTimeout(r2, 50));
  await fake.close();
  await waitFor('offline again', () => hub.state === 'offline');
  const cached = await get('/api/v1/pods');
  assert.deepEqual(cached.body.items.map((p: any) => p.metadata.name), ['fresh']);
});
