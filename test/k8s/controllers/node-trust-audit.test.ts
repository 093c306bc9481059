// The node-trust audit delivery queue against the real service endpoint (POST /v1/node-trust/audit on an
// attestation app over SQLite): retry while the service is down, one malformed record does not block the others,
// the queue is bounded, a bad key is a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { buildAttestationApp } from '../../../src/attestation/index.js';
import { NodeTrustAuditError, NodeTrustAuditSink, loadAuditKey, recordFromEvent, type AuditRecordOut } from '../../../src/k8s/controllers/node-trust-audit.js';
import { freePort } from '../../../src/node/tpm/swtpm-process.js';
import { tempStore } from '../../support/service.js';
import { waitFor } from '../../support/wait.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyPem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const rec = (i: number, over: Partial<AuditRecordOut> = {}): AuditRecordOut => ({
  id: i.toString(16).padStart(16, '0'), node: `n${i}`, from: 'trusted', to: 'untrusted', reason: 'AttestationExpired', message: `m${i}`, at: new Date().toISOString(), ...over,
});

async function service(port: number) {
  const ts = tempStore();
  const { app, service } = await buildAttestationApp({ store: ts.store, adminKeys: [], nodeTrustAuditKeys: [key.publicKey.export({ format: 'pem', type: 'spki' }).toString()] });
  await app.listen({ host: '127.0.0.1', port });
  return { store: service.store, async close() { await app.close(); await ts.cleanup(); } };
}

test('service down: records wait and back off; once it is up they are delivered, each once', async () => {
  const port = await freePort();
  const logs: string[] = [];
  const sink = new NodeTrustAuditSink({ url: `http://127.0.0.1:${port}`, keyPem, identity: 'ctl', log: (e) => logs.push(e), baseBackoffMs: 50, maxBackoffMs: 200 });
  for (let i = 1; i <= 3; i++) sink.add(rec(i));
  sink.add(rec(1)); // the same transition queued twice (Event created, then replayed): sent once
  assert.equal(sink.size(), 3);
  await waitFor('retrying', () => sink.stats.failures >= 3);
  assert.ok(logs.includes('node_trust_audit_retry'));
  const svc = await service(port);
  try {
    await sink.drained();
    assert.equal(sink.stats.delivered, 3);
    const rows = await svc.store.listAudit({ action: 'node-trust.untrusted' });
    assert.deepEqual(rows.map((r) => r.target), ['n1', 'n2', 'n3']);
    // Re-sent (a restarted controller re-queues its Events): replays, no new rows.
    for (let i = 1; i <= 3; i++) sink.add(rec(i));
    await sink.drained();
    assert.equal(sink.stats.replays, 3);
    assert.equal((await svc.store.listAudit({ action: 'node-trust.untrusted' })).length, 3);
  } finally {
    sink.stop();
    await svc.close();
  }
});

test('a malformed record is refused alone (400), the rest of its batch is delivered; the queue is bounded', async () => {
  const port = await freePort();
  const svc = await service(port);
  const logs: { e: string; f: Record<string, unknown> }[] = [];
  const sink = new NodeTrustAuditSink({ url: `http://127.0.0.1:${port}`, keyPem, identity: 'ctl', log: (e, f) => logs.push({ e, f }), maxPending: 4 });
  try {
    sink.add(rec(1));
    sink.add(rec(2, { reason: 'Not A CamelCase Reason' }));
    sink.add(rec(3));
    await sink.drained();
    assert.deepEqual([sink.stats.delivered, sink.stats.rejected], [2, 1]);
    assert.deepEqual((await svc.store.listAudit({ action: 'node-trust.untrusted' })).map((r) => r.target), ['n1', 'n3']);
    assert.ok(logs.some((l) => l.e === 'node_trust_audit_rejected' && String(l.f.key).startsWith('n2:')));
    // Bounded: a fifth waiting record drops the oldest (its Event remains the record of it).
    sink.stop();
    const full = new NodeTrustAuditSink({ url: 'http://127.0.0.1:1', keyPem, identity: 'ctl', log: (e, f) => logs.push({ e, f }), maxPending: 4, baseBackoffMs: 60_000 });
    for (let i = 10; i < 15; i++) full.add(rec(i));
    assert.equal(full.size(), 4);
    assert.equal(full.stats.dropped, 1);
    full.stop();
  } finally {
    await svc.close();
  }
});

test('keys and Event records: RSA or garbage keys are typed errors; only well-formed Event annotations are re-queued', () => {
  assert.throws(() => loadAuditKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' })), (e: unknown) => e instanceof NodeTrustAuditError && e.code === 'AUDIT_KEY_INVALID' && /Ed25519 or P-256/.test(e.message));
  assert.throws(() => loadAuditKey('not a key'), (e: unknown) => e instanceof NodeTrustAuditError && e.code === 'AUDIT_KEY_INVALID');
  assert.equal(loadAuditKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' })).alg, 'EdDSA');
  const r = rec(7);
  assert.deepEqual(recordFromEvent({ metadata: { annotations: { 'coffer.dev/transition': JSON.stringify(r) } } }), r);
  for (const bad of [undefined, 'x', '{}', JSON.stringify({ ...r, id: 5 }), 'x'.repeat(9000)]) assert.equal(recordFromEvent({ metadata: { annotations: bad === undefined ? {} : { 'coffer.dev/transition': bad } } }), undefined);
});
