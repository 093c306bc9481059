import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { captureContext, cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { createTestCa, type TestCa } from '../support/tls.js';

/** The serial of the certificate the server presents (trusting the test CA). */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const c: PeerCertificate = s.getPeerCertificate();
      s.end();
      // Node prints whole bytes (a leading 0 nibble stays); the issued serial is compared without leading zeros.
      resolve(c.serialNumber.toLowerCase().replace(/^0+/, ''));
    });
    s.on('error', reject);
  });
}

describe('coffer up --tls-cert/--tls-key (real HTTPS on loopback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-up-tls-'));
  const data = join(dir, 'data');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const caFile = join(dir, 'ca.crt');
  let ca: TestCa;
  let server: CofferServer;
  let url = '';

  before(async () => {
    ca = await createTestCa('coffer up test CA');
    const leaf = await ca.issue({ cn: 'localhost' });
    writeFileSync(certFile, leaf.certPem);
    writeFileSync(keyFile, leaf.keyPem, { mode: 0o600 });
    writeFileSync(caFile, ca.certPem);
    server = await spawnCofferServer(['up', '--dev', '--swtpm', 'off', '--port', '0', '--data', data, '--tls-cert', certFile, '--tls-key', keyFile], { cwd: dir, env: { COFFER_KEK: '' } });
    url = server.url;
  });
  after(() => {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('prints https URLs; the token issuer and discovery are https', async () => {
    assert.match(server.stdout(), /attestation service +https:\/\/127\.0\.0\.1:\d+\/v1\/challenge/);
    const r = await cli(['kbs-client', '--url', url, '--cert-file', caFile, 'attest', '--sample-key', join(data, 'keys/sample-dev.jwk')]);
    assert.equal(r.code, 0, r.err);
    const claims = JSON.parse(Buffer.from(r.out.trim().split('.')[1], 'base64url').toString());
    assert.equal(claims.iss, url);
  });

  test('kbs-client without --cert-file refuses the untrusted certificate (exit 2, says why)', async () => {
    const r = await cli(['kbs-client', '--url', url, 'attest']);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot reach https:\/\/127\.0\.0\.1:\d+: .*(certificate|self.signed|issuer)/i);
  });

  test('a rotated certificate is served without a restart; a mismatched pair keeps the previous one', async () => {
    const port = Number(new URL(url).port);
    const before = await servedSerial(port, ca.certPem);
    const next = await ca.issue({ cn: 'localhost' });
    // Half-written rotation: the new certificate beside the old key does not load.
    writeFileSync(`${certFile}.tmp`, next.certPem);
    renameSync(`${certFile}.tmp`, certFile);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await servedSerial(port, ca.certPem), before);
    writeFileSync(`${keyFile}.tmp`, next.keyPem, { mode: 0o600 });
    renameSync(`${keyFile}.tmp`, keyFile);
    const deadline = Date.now() + 10_000;
    let now = before;
    while (Date.now() < deadline && now === before) {
      await new Promise((r) => setTimeout(r, 100));
      now = await servedSerial(port, ca.certPem);
    }
    assert.equal(now, next.serial.replace(/^0+/, ''));
    assert.match(server.stderr(), /serving certificate reload failed, keeping the previous one/);
    assert.match(server.stderr(), /serving certificate reloaded/);
  });
});

test('coffer up: --tls-cert without --tls-key, or a key that does not match, is a usage error (exit 2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-up-tls-bad-'));
  try {
    const ca = await createTestCa();
    const [a, b] = [await ca.issue(), await ca.issue()];
    writeFileSync(join(dir, 'a.crt'), a.certPem);
    writeFileSync(join(dir, 'b.key'), b.keyPem);
    const base = ['up', '--port', '0', '--data', join(dir, 'data'), '--swtpm', 'off'];
    const only = await cli([...base, '--tls-cert', join(dir, 'a.crt')]);
    assert.equal(only.code, 2);
    assert.match(only.err, /--tls-cert and --tls-key go together/);
    const mismatch = await cli([...base, '--tls-cert', join(dir, 'a.crt'), '--tls-key', join(dir, 'b.key')]);
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.err, /cannot use --tls-cert .* --tls-key .*: .*(key values mismatch|KEY_VALUES_MISMATCH)/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('coffer up --audit-retention-days: records older than the window are purged at start, newer ones kept', async () => {
  const { startServices } = await import('../../src/cli/commands/up.js');
  const { SqliteStore, Kek } = await import('../../src/store/index.js');
  const { randomBytes } = await import('node:crypto');
  const { mkdirSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-up-audit-'));
  const kekHex = randomBytes(32).toString('hex');
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch {
    /* exists */
  }
  const pre = SqliteStore.open({ path: join(dir, 'coffer.db'), kek: Kek.parse(kekHex) });
  const now = Date.now();
  for (const at of [now - 10 * 86_400_000, now - 3 * 86_400_000, now - 3_600_000]) await pre.appendAudit({ at, actor: 'a', action: 'resource.get', target: 't', result: 'released' });
  await pre.close();
  const ctx = captureContext();
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data: dir, swtpm: 'off', auditRetentionDays: '2' }, ctx, { COFFER_KEK: kekHex });
  try {
    assert.match(ctx.out(), /audit +kept 2 days/);
    const deadline = Date.now() + 5000;
    let ats: number[] = [];
    while (Date.now() < deadline) {
      ats = (await s.store.listAudit()).map((e) => e.at);
      if (ats.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(ats, [now - 3_600_000]);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const bad = await cli(['up', '--port', '0', '--data', join(dir, 'x'), '--audit-retention-days', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--audit-retention-days 'soon' is not a number of days/);
});
