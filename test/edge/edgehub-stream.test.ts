// The online LIST path: answers stream through while being spooled, and only a complete body ever reaches the
// cache. The upstream here is a minimal HTTP server writing PodList JSON by hand, so a test can cut a body short,
// pace it, or watch its request being aborted (the fake apiserver always answers whole bodies).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';
import { makePod } from '../support/k8s-objects.js';
import { waitFor } from '../support/wait.js';

const UA = { 'user-agent': 'kubelet/v1.32.0 (linux/amd64) kubernetes/test' };

function podList(rv: string, n: number, prefix: string): Buffer {
  const items = Array.from({ length: n }, (_, i) => {
    const p = makePod(`ns-${i % 3}`, `${prefix}-${String(i).padStart(5, '0')}`, `node-${i % 4}`);
    p.metadata.resourceVersion = String(100 + i);
    return JSON.stringify(p);
  });
  return Buffer.from(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"${rv}"},"items":[${items.join(',')}]}`);
}

type Mode = { kind: 'whole'; body: Buffer } | { kind: 'torn'; body: Buffer } | { kind: 'slow'; body: Buffer };
let mode: Mode;
let ready = true;
let aborted = 0;
let server: http.Server;
let hub: EdgeHub;
let url: string;
let dir: string;
const events: { event: string; detail: Record<string, unknown> }[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(ready ? 200 : 500).end(ready ? 'ok' : 'down');
      return;
    }
    if (!req.url?.startsWith('/api/v1/pods')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
      return;
    }
    const m = mode;
    res.on('close', () => {
      if (!res.writableFinished) aborted++;
    });
    if (m.kind === 'whole') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': m.body.length }).end(m.body);
    } else if (m.kind === 'torn') {
      // Announces the full length, sends half, then the connection drops.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': m.body.length });
      res.write(m.body.subarray(0, m.body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      let off = 0;
      const step = () => {
        if (res.destroyed) return;
        if (off >= m.body.length) return void res.end();
        res.write(m.body.subarray(off, off + 64 * 1024));
        off += 64 * 1024;
        setTimeout(step, 10);
      };
      step();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  dir = mkdtempSync(join(tmpdir(), 'coffer-edge-stream-'));
  const upstream = await createUpstream(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  hub = new EdgeHub({ upstream, port: 0, cacheDir: dir, healthIntervalMs: 60_000, probeTimeoutMs: 500, failureThreshold: 1, cacheAgents: ['kubelet'], flushDelayMs: 10, log: (event, detail) => events.push({ event, detail }) });
  url = (await hub.start()).url;
});

after(async () => {
  await hub.stop();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function list(): Promise<{ status: number; body: Buffer }> {
  const r = await fetch(`${url}/api/v1/pods`, { headers: UA });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

async function offlineNames(): Promise<string[]> {
  ready = false;
  await hub.probe();
  assert.equal(hub.state, 'offline');
  try {
    const r = await list();
    assert.equal(r.status, 200);
    return JSON.parse(r.body.toString()).items.map((p: any) => p.metadata.name);
  } finally {
    ready = true;
    await hub.probe();
    assert.equal(hub.state, 'online');
  }
}

test('a LIST much larger than a socket chunk and the indexing step passes through byte for byte, then serves offline', async () => {
  const body = podList('1000', 2500, 'big'); // ~4 MiB: many socket chunks, 16 indexing steps
  assert.ok(body.length > 3 * 1024 * 1024);
  mode = { kind: 'whole', body };
  const r = await list();
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(body), 'the client gets exactly the server bytes');
  await hub.flush();
  const c = hub.cache.find('kubelet', '', 'v1', 'pods')!;
  assert.equal(c.items.size, 2500);
  assert.equal(c.rv, '1000');
  const e = c.get('ns-1', 'big-00001')!;
  assert.equal(e.raw, undefined, 'indexed entries keep no copy of the bytes');
  assert.equal(e.fields['spec.nodeName'], 'node-1');
  assert.equal(JSON.parse(c.bytesOf(e).toString()).metadata.resourceVersion, '101');
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.spool')), [], 'spool files are anonymous (unlinked)');
  const names = await offlineNames();
  assert.equal(names.length, 2500);
  assert.deepEqual(names.slice(0, 2), ['big-00000', 'big-00003'], 'key order: ns-0 first');
});

test('a torn upstream answer reaches the client torn and never replaces the cached list', async () => {
  mode = { kind: 'whole', body: podList('2000', 10, 'good') };
  assert.equal((await list()).status, 200);
  await hub.flush();
  mode = { kind: 'torn', body: podList('3000', 2000, 'torn') };
  await assert.rejects(list(), 'the client sees the answer cut short');
  await hub.flush();
  const c = hub.cache.find('kubelet', '', 'v1', 'pods')!;
  assert.equal(c.rv, '2000');
  // Key order namespace/name: ns-0 holds 0,3,6,9; ns-1 1,4,7; ns-2 2,5,8.
  assert.deepEqual(await offlineNames(), [0, 3, 6, 9, 1, 4, 7, 2, 5, 8].map((i) => `good-0000${i}`));
  // A complete body that is not closed JSON (a server bug) is not indexed either.
  const bad = podList('4000', 5, 'bad');
  mode = { kind: 'whole', body: bad.subarray(0, bad.length - 3) };
  const r = await list();
  assert.equal(r.status, 200);
  await hub.flush();
  assert.equal(c.rv, '2000');
  assert.ok(events.some((e) => e.event === 'cache_update_failed' && /truncated/.test(String(e.detail.error))));
});

test('a client that disconnects mid-stream aborts the upstream request, caches nothing, and the hub carries on', async () => {
  const before = hub.cache.find('kubelet', '', 'v1', 'pods')!.rv;
  mode = { kind: 'slow', body: podList('5000', 2000, 'slow') };
  const abortedBefore = aborted;
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${url}/api/v1/pods`, { headers: UA }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 200 * 1024) {
          req.destroy();
          resolve();
        }
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    setTimeout(() => reject(new Error('no data')), 5000);
  });
  await waitFor('upstream request aborted', () => aborted > abortedBefore);
  await hub.flush();
  assert.equal(hub.cache.find('kubelet', '', 'v1', 'pods')!.rv, before, 'nothing of the cut answer was cached');
  mode = { kind: 'whole', body: podList('6000', 3, 'after') };
  const r = await list();
  assert.equal(r.status, 200);
  await hub.flush();
  assert.deepEqual(await offlineNames(), ['after-00000', 'after-00001', 'after-00002']);
});
