// The quote helper's TPM provider against a real swtpm: a pod's report data over HTTP on the unix socket → a TPM
// quote that Coffer's TPM verifier accepts with the workload AK pinned (derived from the TPM beforehand, not taken
// from the answer) and never as the node's enrolled AK, one quote at a time under concurrent requests, typed errors
// for bad input and a missing TPM, and the `coffer agent quote-helper --swtpm` process serving it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { QuoteServer } from '../../../src/node/quote/quote-server.js';
import { TpmQuoter } from '../../../src/node/quote/tpm-quote.js';
import { TsmReportClient } from '../../../src/node/quote/tsm-report.js';
import { SocketTransport, TpmClient, TPM_RH, workloadAkTemplate } from '../../../src/node/tpm/index.js';
import { serializePublic2b } from '../../../src/tee/tpm/abi/public.js';
import { createVerifierRegistry, verifyEvidence } from '../../../src/index.js';
import { toHex } from '../../../src/tee/common/hex.js';
import { TPM_ALG } from '../../../src/tee/tpm/abi/constants.js';
import { buildEventLog } from '../../support/eventlog-builder.js';
import { startSwtpm, swtpmSkip, type Swtpm } from '../../support/swtpm.js';
import { waitFor } from '../../support/wait.js';
import { hostTree, type HostTree } from './host-tree.js';

const skip = swtpmSkip;
const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;
const registry = createVerifierRegistry();
let tpm: Swtpm;
let t: HostTree;
let akPub: Uint8Array;
let nodeAkPub: Uint8Array;
let eventLogPath: string;

before(async () => {
  if (skip) return;
  tpm = await startSwtpm();
  t = hostTree();
  // The AK the agent enrols, derived independently of the helper: the pin the verifier uses.
  const c = new TpmClient(await SocketTransport.connect(tpm.port));
  try {
    // Firmware's part: measure a boot log (separators on PCRs 0, 1, 2, 7) into the PCRs and leave the log on disk.
    const { log, digests } = buildEventLog([0, 1, 2, 7].map((pcr) => ({ pcr, type: 4, data: Buffer.alloc(4) })));
    for (const d of digests) await c.pcrExtend(d.pcr, [{ alg: TPM_ALG.SHA256, digest: d.digest }]);
    eventLogPath = path.join(t.root, 'binary_bios_measurements');
    writeFileSync(eventLogPath, log);
    const ak = await c.createPrimary(TPM_RH.ENDORSEMENT, workloadAkTemplate());
    akPub = serializePublic2b(ak.public);
    await c.flush(ak.handle);
    const nodeAk = await c.createAk('ecc');
    nodeAkPub = serializePublic2b(nodeAk.public);
    await c.flush(nodeAk.handle);
  } finally {
    await c.close();
  }
});
after(async () => {
  if (skip) return;
  await tpm.stop();
  t.cleanup();
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

async function verify(answer: { tee: string; evidence: string; attachments: Record<string, string> }, nonce: Uint8Array, pin = akPub) {
  const attachments = Object.fromEntries(Object.entries(answer.attachments).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]));
  return verifyEvidence({ evidence: new Uint8Array(Buffer.from(answer.evidence, 'base64')), attachments }, { tee: 'tpm', nonce, registry, tpm: { akTrust: { kind: 'pinned', ak: pin } } });
}

test('POST /v1/tpm/quote: quote bound to the report data verifies with the pinned AK; concurrent requests are serialized', { skip }, async () => {
  const quoter = new TpmQuoter({ open: async () => new TpmClient(await SocketTransport.connect(tpm.port)), pcrs: [0, 1, 2, 7, 16], eventLogPath, ak: 'ecc' });
  const server = new QuoteServer({ socketDir: t.root, socketName: 'inproc.sock', client: new TsmReportClient(path.join(t.root, 'no-tsm')), tpm: quoter });
  await server.start();
  try {
    assert.deepEqual(await call(server.socketPath, 'GET', '/healthz'), { status: 200, json: { provider: 'tpm' } });
    const nonce = randomBytes(32);
    const r = await call(server.socketPath, 'POST', '/v1/tpm/quote', JSON.stringify({ reportData: nonce.toString('hex') }));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.tee, 'tpm');
    assert.deepEqual(Object.keys(r.json.attachments).sort(), ['ak', 'eventlog', 'pcrs', 'signature']);
    assert.deepEqual(Buffer.from(r.json.attachments.ak, 'base64'), Buffer.from(akPub));
    const v = await verify(r.json, nonce);
    assert.equal(v.verified, true, JSON.stringify(v.errors));
    assert.equal(v.claims!.reportData, toHex(nonce));
    // The event log came along and replays to the quoted PCRs it has events for.
    assert.deepEqual((v.claims!.raw.eventLog as { replayedPcrs: string[] }).replayedPcrs.sort(), ['sha256:0', 'sha256:1', 'sha256:2', 'sha256:7']);
    assert.deepEqual(Object.keys(v.claims!.measurements).filter((k) => k.startsWith('pcrsha256_')).sort(), ['pcrsha256_0', 'pcrsha256_1', 'pcrsha256_16', 'pcrsha256_2', 'pcrsha256_7']);
    // Not the node's enrolled AK: a pod cannot turn helper quotes into node-attestation evidence.
    assert.notDeepEqual(Buffer.from(akPub), Buffer.from(nodeAkPub));
    const asNode = await verify(r.json, nonce, nodeAkPub);
    assert.equal(asNode.verified, false);
    assert.match(asNode.errors[0].code, /AK/);
    // Another nonce does not verify against this quote (the verifier checks extraData).
    const wrong = await verify(r.json, randomBytes(32));
    assert.equal(wrong.verified, false);
    assert.equal(wrong.errors[0].code, 'NONCE_MISMATCH');

    // 6 at once (the TPM has 3 transient slots): each answer carries its own nonce and verifies.
    const nonces = Array.from({ length: 6 }, (_, i) => randomBytes(i % 2 ? 64 : 20));
    const answers = await Promise.all(nonces.map((n, i) => call(server.socketPath, 'POST', '/v1/tpm/quote', JSON.stringify({ reportData: i % 2 ? n.toString('base64') : n.toString('hex') }))));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 200, JSON.stringify(a.json));
      const ok = await verify(a.json, nonces[i]);
      assert.equal(ok.verified, true, JSON.stringify(ok.errors));
    }

    // Bounded, typed input errors; the configfs route still answers for itself.
    for (const bad of [{ reportData: 'ab'.repeat(65) }, { reportData: '' }, { reportData: 12 }, {}, { reportData: Buffer.alloc(65).toString('base64') }]) {
      const b = await call(server.socketPath, 'POST', '/v1/tpm/quote', JSON.stringify(bad));
      assert.equal(b.status, 400, JSON.stringify(bad));
      assert.equal(b.json.code, 'BAD_REPORT_DATA');
    }
    assert.equal((await call(server.socketPath, 'POST', '/v1/tpm/quote', '[1]')).json.code, 'BAD_JSON');
    assert.equal((await call(server.socketPath, 'POST', '/v1/tpm/quote', 'x'.repeat(5000))).status, 413);
    assert.equal((await call(server.socketPath, 'GET', '/v1/tpm/quote')).status, 405);
    const tsm = await call(server.socketPath, 'POST', '/v1/quote', JSON.stringify({ reportData: Buffer.alloc(64).toString('hex') }));
    assert.equal(tsm.status, 503);
    assert.equal(tsm.json.code, 'TSM_UNAVAILABLE');
  } finally {
    await server.stop();
    await quoter.close();
  }
});

test('a helper without a TPM answers 503 TPM_UNAVAILABLE; a TPM that does not open is TPM_UNAVAILABLE too', { skip }, async () => {
  const none = new QuoteServer({ socketDir: t.root, socketName: 'none.sock', client: new TsmReportClient(path.join(t.root, 'no-tsm')) });
  await none.start();
  const dead = new TpmQuoter({ open: async () => new TpmClient(await SocketTransport.connect(1, '127.0.0.1', 500)), describe: 'swtpm 127.0.0.1:1' });
  const closed = new QuoteServer({ socketDir: t.root, socketName: 'dead.sock', tpm: dead });
  await closed.start();
  try {
    const r = await call(none.socketPath, 'POST', '/v1/tpm/quote', JSON.stringify({ reportData: 'abcd' }));
    assert.equal(r.status, 503);
    assert.equal(r.json.code, 'TPM_UNAVAILABLE');
    assert.equal((await call(none.socketPath, 'GET', '/healthz')).status, 503);
    const d = await call(closed.socketPath, 'POST', '/v1/tpm/quote', JSON.stringify({ reportData: 'abcd' }));
    assert.equal(d.status, 503);
    assert.equal(d.json.code, 'TPM_UNAVAILABLE');
    assert.match(d.json.message, /swtpm 127\.0\.0\.1:1/);
    assert.deepEqual((await call(closed.socketPath, 'GET', '/healthz')).json.code, 'TPM_UNAVAILABLE');
  } finally {
    await none.stop();
    await closed.stop();
  }
});

test('coffer agent quote-helper --swtpm: serves TPM quotes without configfs-tsm, stops on SIGTERM', { skip }, async () => {
  const child = spawn(process.execPath, [BIN, 'agent', 'quote-helper', '--socket-dir', t.root, '--tsm-dir', path.join(t.root, 'no-tsm'), '--swtpm', `127.0.0.1:${tpm.port}`, '--tpm-pcrs', '0,7', '--event-log', path.join(t.root, 'no-log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const sock = path.join(t.root, 'coffer-quote.sock');
    await waitFor('socket', () => { try { return statSync(sock).isSocket(); } catch { return false; } }, 15_000);
    assert.equal((await call(sock, 'GET', '/healthz')).json.provider, 'tpm');
    const nonce = randomBytes(32);
    const r = await call(sock, 'POST', '/v1/tpm/quote', JSON.stringify({ reportData: nonce.toString('base64') }));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const v = await verify(r.json, nonce);
    assert.equal(v.verified, true, JSON.stringify(v.errors));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"event":"providers","tsm":false,"tpm":true/);
  } finally {
    child.kill('SIGKILL');
  }
});
