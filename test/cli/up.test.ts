import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';

describe('coffer up --dev (real process, real HTTP on loopback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-up-'));
  const data = join(dir, 'data');
  let server: CofferServer;
  let url = '';

  before(async () => {
    server = await spawnCofferServer(['up', '--dev', '--swtpm', 'off', '--port', '0', '--data', data], { cwd: dir, env: { COFFER_KEK: '' } });
    url = server.url;
  });
  after(() => {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('prints the URLs, the admin-credential command and a loud dev warning; keys are 0600', () => {
    assert.match(server.stdout(), /attestation service +http:\/\/127\.0\.0\.1:\d+\/v1\/challenge/);
    assert.match(server.stdout(), /key broker \(KBS\) +http:\/\/127\.0\.0\.1:\d+\/kbs\/v0/);
    assert.match(server.stdout(), new RegExp(`coffer admin-token --data ${data.replace(/[/.]/g, '\\$&')}`));
    assert.match(server.stderr(), /DEV MODE/);
    for (const f of ['keys/kek', 'keys/admin.key', 'keys/sample-dev.jwk', 'coffer.db']) assert.equal(statSync(join(data, f)).mode & 0o777, 0o600, f);
  });

  test('serves /v1/challenge and the KBS auth over HTTP', async () => {
    const c = await fetch(`${url}/v1/challenge`, { method: 'POST' });
    assert.equal(c.status, 201);
    assert.equal(Buffer.from(((await c.json()) as { nonce: string }).nonce, 'base64').length, 32);
    const a = await fetch(`${url}/kbs/v0/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: '0.4.0', tee: 'sample', 'extra-params': '' }) });
    assert.equal(a.status, 200);
    assert.match(a.headers.get('set-cookie') ?? '', /^kbs-session-id=[0-9a-f]{32};/);
    const adminNoAuth = await fetch(`${url}/v1/admin/policies`);
    assert.equal(adminNoAuth.status, 401);
  });

  test('kbs-client end to end: set-resource, default deny, set-resource-policy, get-resource, attest', async () => {
    const tok = await cli(['admin-token', '--data', data]);
    assert.equal(tok.code, 0, tok.err);
    const adminToken = tok.out.trim();
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 'database-password');
    const base = ['kbs-client', '--url', url, '--admin-token', adminToken];
    assert.equal((await cli([...base, 'set-resource', '--path', 'default/key/db', '--resource-file', secretFile])).code, 0);
    const denied = await cli(['kbs-client', '--url', url, 'get-resource', '--path', 'default/key/db']);
    assert.equal(denied.code, 1);
    assert.match(denied.err, /PolicyDeny/);
    const noAdmin = await cli(['kbs-client', '--url', url, '--admin-token', 'x.y.z', 'set-resource-policy', '--allow-all']);
    assert.equal(noAdmin.code, 1);
    assert.match(noAdmin.err, /AdminAuthAccess/);
    const policyFile = join(dir, 'rp.json');
    writeFileSync(policyFile, JSON.stringify({ rules: [{ resources: ['default/key/*'], tees: ['sample'], status: ['affirming'] }] }));
    assert.equal((await cli([...base, 'set-resource-policy', '--policy-file', policyFile])).code, 0);
    const got = await cli(['kbs-client', '--url', url, 'get-resource', '--path', 'default/key/db']);
    assert.equal(got.code, 0, got.err);
    assert.equal(Buffer.from(got.out.trim(), 'base64').toString(), 'database-password');
    const att = await cli(['kbs-client', '--url', url, 'attest']);
    assert.equal(att.code, 0);
    assert.equal(att.out.trim().split('.').length, 3);
    const signed = await cli(['kbs-client', '--url', url, 'attest', '--sample-key', join(data, 'keys/sample-dev.jwk')]);
    assert.equal(signed.code, 0, signed.err);
    const claims = JSON.parse(Buffer.from(signed.out.trim().split('.')[1], 'base64url').toString());
    const sample = claims.submods.cpu0['ear.veraison.annotated-evidence'].sample;
    assert.equal(sample.signed, true);
    assert.match(sample.kid, /^sample-dev-/);
    const pol = join(dir, 'ap.yaml');
    writeFileSync(pol, 'referenceValues: default\nrules:\n  - {id: svn, claim: svns.svn, gte: 2}\n');
    assert.equal((await cli([...base, 'set-attestation-policy', '--policy-file', pol])).code, 0);
    const deniedNow = await cli(['kbs-client', '--url', url, 'get-resource', '--path', 'default/key/db']);
    assert.equal(deniedNow.code, 1);
    assert.match(deniedNow.err, /contraindicated/);
    const viaKey = ['kbs-client', '--url', url, '--auth-private-key', join(data, 'keys/admin.key')];
    const gp = await cli([...viaKey, 'get-resource-policy']);
    assert.equal(gp.code, 0, gp.err);
    assert.deepEqual(JSON.parse(gp.out).rules[0].resources, ['default/key/*']);
    assert.equal((await cli([...viaKey, 'delete-resource', '--path', 'default/key/db'])).code, 0);
    assert.equal((await cli([...viaKey, 'delete-resource', '--path', 'default/key/db'])).code, 1);
    const unreachable = await cli(['kbs-client', '--url', 'http://127.0.0.1:1', 'attest']);
    assert.equal(unreachable.code, 2);
  });

  test('GET /metrics: Prometheus text with attestation, KBS and HTTP latency series', async () => {
    const m = await (await fetch(`${url}/metrics`)).text();
    assert.match(m, /coffer_attestations_total\{api="kbs",tee="sample",result="affirming"\} [1-9]/);
    assert.match(m, /coffer_kbs_resource_requests_total\{result="released"\} 1/);
    assert.match(m, /coffer_http_request_duration_seconds_count\{route="\/v1\/challenge",code="2xx"\} 1/);
  });

  test('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => server.child.on('exit', (c) => r(c)));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(server.stderr(), /SIGTERM, shutting down/);
  });
});
