/**
 * Slow-loris bodies and stalled chunked bodies are cut by request timeouts: on the fastify app every Coffer service
 * mounts (attestation service, KBS, `coffer up`) and on the quote helper. Raw sockets on loopback, small configured
 * timeouts; the only time bound is a generous "the server closed it eventually" (liveness, not a timed assertion).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpApp } from '../../src/attestation/http.js';
import { QuoteServer } from '../../src/node/quote/quote-server.js';
import { TsmReportClient } from '../../src/node/quote/tsm-report.js';
import { EdgeHub } from '../../src/edge/hub.js';
import { createUpstream } from '../../src/edge/upstream.js';

/** Resolves with what the server sent once it closes the socket; rejects if it is still open after `limitMs`. */
function closedBy(s: Socket, limitMs: number): Promise<string> {
  let got = '';
  s.on('data', (d) => (got += d));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms; got: ${got}`)), limitMs);
    s.on('close', () => (clearTimeout(t), resolve(got)));
    s.on('error', () => undefined);
  });
}

async function probe(connectTo: () => Socket, path: string): Promise<void> {
  // 1. Slow loris: a declared body sent one byte at a time, slower than the request timeout allows.
  const slow = connectTo();
  const slowClosed = closedBy(slow, 20_000);
  slow.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
  const drip = setInterval(() => slow.writable && slow.write(' '), 200);
  try {
    const got = await slowClosed;
    assert.match(got, /^(HTTP\/1\.1 408|)/, 'a 408 or a plain close');
  } finally {
    clearInterval(drip);
    slow.destroy();
  }
  // 2. A chunk of 2^64-1 bytes announced, then silence.
  const stalled = connectTo();
  const stalledClosed = closedBy(stalled, 20_000);
  stalled.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{"a":`);
  try {
    await stalledClosed;
  } finally {
    stalled.destroy();
  }
  // 3. Headers that never finish.
  const headers = connectTo();
  const headersClosed = closedBy(headers, 20_000);
  headers.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Slow: `);
  try {
    await headersClosed;
  } finally {
    headers.destroy();
  }
}

test('the services\' fastify app cuts slow and stalled request bodies', async () => {
  const app = createHttpApp({ requestTimeoutMs: 800, headersTimeoutMs: 500, timeoutCheckIntervalMs: 100 });
  app.post('/v1/attest', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const port = (app.server.address() as { port: number }).port;
    await probe(() => connect({ port, host: '127.0.0.1' }), '/v1/attest');
    // A normal request still works.
    const r = await fetch(`http://127.0.0.1:${port}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(r.status, 200);
  } finally {
    await app.close();
  }
});

test('defaults: every service app has request and header timeouts (fastify\'s default is none)', async () => {
  const app = createHttpApp();
  try {
    assert.equal(app.server.requestTimeout, 30_000);
    assert.equal(app.server.headersTimeout, 10_000);
  } finally {
    await app.close();
  }
});

test('the quote helper cuts slow and stalled request bodies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-quote-timeouts-'));
  const server = new QuoteServer({ socketDir: dir, client: new TsmReportClient(join(dir, 'tsm')), requestTimeoutMs: 800, timeoutCheckIntervalMs: 100 });
  await server.start();
  try {
    await probe(() => connect({ path: server.socketPath }), '/v1/quote');
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the edge hub cuts slow and stalled request bodies (a local write from a slow client)', async () => {
  // An API server that is not there: the hub starts offline and still serves its listener.
  const hub = new EdgeHub({ upstream: await createUpstream('http://127.0.0.1:9'), host: '127.0.0.1', port: 0, requestTimeoutMs: 800, healthIntervalMs: 60_000, probeTimeoutMs: 200, log: () => undefined });
  const { port } = await hub.start();
  try {
    await probe(() => connect({ port, host: '127.0.0.1' }), '/api/v1/namespaces/kube-node-lease/leases');
  } finally {
    await hub.stop();
  }
});
