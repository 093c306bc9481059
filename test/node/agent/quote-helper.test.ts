// The configfs-tsm quote helper: the client against a model of the kernel ABI, the HTTP-over-unix-socket service
// pods call, and `coffer agent quote-helper` failing closed where the interface is missing or is not configfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TsmReportClient } from '../../../src/node/quote/tsm-report.js';
import { QuoteServer } from '../../../src/node/quote/quote-server.js';
import { waitFor } from '../../support/wait.js';
import { FakeConfigfsTsm } from './fake-configfs-tsm.js';
import { hostTree } from './host-tree.js';

const REPORT = '/sys/kernel/config/tsm/report';
const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;
const rd = Buffer.alloc(64, 0xab);

test('TDX: report data in, quote out, entry removed; generation checked', async () => {
  const fs = new FakeConfigfsTsm(REPORT, 'tdx_guest');
  const c = new TsmReportClient(REPORT, fs);
  const r = await c.report(rd);
  assert.equal(r.provider, 'tdx_guest');
  assert.equal(r.generation, 1);
  assert.equal(r.auxblob, undefined);
  assert.ok(r.outblob.includes(rd), 'quote binds the report data');
  assert.equal(fs.entries.size, 0, 'entry rmdir-ed');
});

test('SNP: privlevel written first (generation 2), auxblob returned; below the floor is refused by the kernel', async () => {
  const fs = new FakeConfigfsTsm(REPORT, 'sev_guest', 1, Buffer.from('certtable'));
  const c = new TsmReportClient(REPORT, fs);
  const r = await c.report(rd, 2);
  assert.equal(r.generation, 2);
  assert.match(r.outblob.toString('latin1'), /^sev_guest:vmpl2:/);
  assert.deepEqual(r.auxblob, Buffer.from('certtable'));
  await assert.rejects(c.report(rd, 0), (e: Error & { code?: string }) => e.code === 'TSM_FAILED' && /writing privlevel failed: EINVAL/.test(e.message));
  assert.equal(fs.entries.size, 0);
});

test('fails closed: wrong report data size, bad privlevel, another writer on the entry, missing interface', async () => {
  const fs = new FakeConfigfsTsm(REPORT);
  const c = new TsmReportClient(REPORT, fs);
  await assert.rejects(c.report(Buffer.alloc(32)), (e: Error & { code?: string }) => e.code === 'BAD_REPORT_DATA');
  await assert.rejects(c.report(Buffer.alloc(65)), (e: Error & { code?: string }) => e.code === 'BAD_REPORT_DATA');
  await assert.rejects(c.report(rd, 4), (e: Error & { code?: string }) => e.code === 'BAD_PRIVLEVEL');
  fs.afterOutblob = (entry) => void fs.writeFile(path.join(entry, 'inblob'), Buffer.alloc(64, 1));
  await assert.rejects(c.report(rd), (e: Error & { code?: string }) => e.code === 'TSM_RACE' && /expected 1/.test(e.message));
  assert.equal(fs.entries.size, 0);
  await assert.rejects(new TsmReportClient('/nonexistent/tsm/report').report(rd), (e: Error & { code?: string }) => e.code === 'TSM_UNAVAILABLE');
});

test('a plain directory is not configfs: no generation attribute → TSM_FAILED, never a quote', async () => {
  const t = hostTree();
  try {
    const dir = path.join(t.sys, 'kernel/config/tsm/report');
    mkdirSync(dir, { recursive: true });
    await assert.rejects(new TsmReportClient(dir).report(rd), (e: Error & { code?: string }) => e.code === 'TSM_FAILED' && /reading generation failed/.test(e.message));
  } finally {
    t.cleanup();
  }
});

function call(socketPath: string, method: string, p: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: b ? JSON.parse(b) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('quote service on a unix socket: hex and base64 report data, typed errors, socket open to pod users', async () => {
  const t = hostTree();
  const fs = new FakeConfigfsTsm(REPORT, 'sev_guest', 0, Buffer.from('certs'));
  const server = new QuoteServer({ socketDir: t.root, client: new TsmReportClient(REPORT, fs) });
  await server.start();
  try {
    assert.equal(statSync(server.socketPath).mode & 0o777, 0o666);
    assert.deepEqual(await call(server.socketPath, 'GET', '/healthz'), { status: 200, json: { provider: 'configfs-tsm' } });
    const hex = await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: rd.toString('hex') }));
    assert.equal(hex.status, 200);
    assert.equal(hex.json.provider, 'sev_guest');
    assert.ok(Buffer.from(hex.json.quote, 'base64').includes(rd));
    assert.equal(Buffer.from(hex.json.auxblob, 'base64').toString(), 'certs');
    const b64 = await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: rd.toString('base64'), privlevel: 1 }));
    assert.equal(b64.status, 200);
    assert.match(Buffer.from(b64.json.quote, 'base64').toString('latin1'), /^sev_guest:vmpl1:/);
    assert.equal((await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: 'abcd' }))).json.code, 'BAD_REPORT_DATA');
    assert.equal((await call(server.socketPath, 'POST', '/v1/quote', '{nope')).status, 400);
    assert.equal((await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: rd.toString('hex'), privlevel: 9 }))).json.code, 'BAD_PRIVLEVEL');
    assert.equal((await call(server.socketPath, 'POST', '/v1/quote', 'x'.repeat(5000))).status, 413);
    assert.equal((await call(server.socketPath, 'GET', '/v1/quote')).status, 405);
    assert.equal((await call(server.socketPath, 'GET', '/nope')).status, 404);
    fs.afterOutblob = (entry) => void fs.writeFile(path.join(entry, 'inblob'), Buffer.alloc(64));
    assert.deepEqual((await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: rd.toString('hex') }))).status, 500);
  } finally {
    await server.stop();
    t.cleanup();
  }
});

test('coffer agent quote-helper: exit 1 with the reason where configfs-tsm is missing; serves and fails closed on a non-configfs tree', async () => {
  const { runCli } = await import('../../../src/cli/run.js');
  const t = hostTree();
  let err = '';
  try {
    const r = await runCli(['agent', 'quote-helper', '--socket-dir', t.root, '--tsm-dir', path.join(t.sys, 'kernel/config/tsm/report')], { out: () => undefined, err: (s) => (err += s) });
    assert.deepEqual(r, { kind: 'exit', code: 1 });
    assert.match(err, /TSM_UNAVAILABLE: .* not a TDX or SEV-SNP guest .*aesmd/);

    const tsm = path.join(t.sys, 'kernel/config/tsm/report');
    mkdirSync(tsm, { recursive: true });
    const child = spawn(process.execPath, [BIN, 'agent', 'quote-helper', '--socket-dir', t.root, '--tsm-dir', tsm], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      const sock = path.join(t.root, 'coffer-quote.sock');
      await waitFor('socket', () => { try { return statSync(sock).isSocket(); } catch { return false; } }, 15_000);
      const q = await call(sock, 'POST', '/v1/quote', JSON.stringify({ reportData: rd.toString('hex') }));
      assert.equal(q.status, 500);
      assert.equal(q.json.code, 'TSM_FAILED');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    t.cleanup();
  }
});
