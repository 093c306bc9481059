// Acknowledged node-trust audit records survive a SIGKILL of the service: `coffer up --node-trust-audit-key` as a
// process, records posted while it is killed mid-stream; every record the service answered for is in the store
// after a restart, and re-sending all of them adds only the unacknowledged ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnCofferServer } from '../support/cli.js';
import { NodeTrustAuditSink, type AuditRecordOut } from '../../src/k8s/controllers/node-trust-audit.js';

const UP = ['up', '--port', '0', '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off'];

test('SIGKILL while records arrive: every acknowledged record is kept; a full replay adds the rest, none twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-audit-kill-'));
  const key = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'key.pem'), key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const args = [...UP, '--data', join(dir, 'data'), '--node-trust-audit-key', join(dir, 'key.pem')];
  const recs: AuditRecordOut[] = Array.from({ length: 400 }, (_, i) => ({ id: i.toString(16).padStart(16, '0'), node: `node-${i}`, from: 'trusted', to: 'untrusted', reason: 'AttestationExpired', message: `token ${i} expired`, at: new Date().toISOString() }));
  let server = await spawnCofferServer(args);
  try {
    const sink = new NodeTrustAuditSink({ url: server.url, keyPem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }), identity: 'ctl', log: () => {}, baseBackoffMs: 50, maxBackoffMs: 100 });
    // Batches of 100 go out one after another; kill the service as soon as the first batch is acknowledged.
    for (const r of recs) sink.add(r);
    const acked = await new Promise<number>((resolve) => {
      const t = setInterval(() => {
        if (sink.stats.delivered > 0) {
          clearInterval(t);
          server.kill();
          resolve(sink.stats.delivered);
        }
      }, 1);
    });
    sink.stop();
    assert.ok(acked >= 100 && acked < 400, `killed mid-stream (${acked} acknowledged)`);
    await new Promise((r) => server.child.once('exit', r));
    server = await spawnCofferServer(args);
    const token = (await cli(['admin-token', '--data', join(dir, 'data')])).out.trim();
    const rows = async () => ((await (await fetch(`${server.url}/v1/admin/audit?action=node-trust.untrusted&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json()) as any[]);
    const kept = await rows();
    assert.ok(kept.length >= acked, `${kept.length} records kept, ${acked} were acknowledged`);
    // The controller re-sends everything (its Events): the store ends with each record exactly once.
    const again = new NodeTrustAuditSink({ url: server.url, keyPem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }), identity: 'ctl', log: () => {} });
    for (const r of recs) again.add(r);
    await again.drained();
    again.stop();
    assert.equal(again.stats.replays, kept.length);
    assert.equal(again.stats.delivered, 400 - kept.length);
    const all = await rows();
    assert.equal(all.length, 400);
    assert.equal(new Set(all.map((r) => r.details.transition)).size, 400);
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
