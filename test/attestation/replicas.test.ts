// Several attestation replicas on one PostgreSQL database, as `attestation.replicas > 1` deploys them: one admin key
// set for all (the admin-keys ConfigMap, --admin-keys), token signing keys in the shared store (one JWKS verifies
// every replica's tokens), the node-trust audit log shared and idempotent across replicas. A real PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
import { pgSkip, startPostgres, type PgHandle } from '../support/postgres.js';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { createTestCa } from '../support/tls.js';
import { buildManifests } from '../../src/k8s/manifests/render.js';
import { mergeValues } from '../../src/k8s/manifests/values.js';
import { Kek, PostgresStore } from '../../src/store/index.js';
import { buildAttestationApp, bindingValue } from '../../src/attestation/index.js';
import { makeSampleEvidence } from '../../src/tee/sample/attester.js';
import { NodeTrustAuditSink } from '../../src/k8s/controllers/node-trust-audit.js';

const skip = pgSkip;
let pgh: PgHandle;
let dir: string;
let dbCount = 0;

async function freshDb(): Promise<string> {
  const c = new pg.Client({ connectionString: pgh.url });
  await c.connect();
  const name = `r${dbCount++}`;
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return pgh.url.replace(/\/postgres$/, `/${name}`);
}

before(async () => {
  if (skip) return;
  pgh = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'coffer-replicas-'));
});
after(() => {
  if (skip) return;
  pgh?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("two replicas from the rendered Deployment's args on one PostgreSQL: the operator's admin token works on both, one JWKS, one audit log", { skip }, async () => {
  const dep = (buildManifests(mergeValues({ attestation: { replicas: 2 } })).flatMap((f) => f.objects) as any[]).find((o) => o.kind === 'Deployment' && o.metadata.name === 'coffer-attestation');
  assert.equal(dep.spec.replicas, 2);
  const c = dep.spec.template.spec.containers[0];
  // The operator's part: an admin key pair (the public half in the ConfigMap), the audit key Secret, the KEK.
  const adminKey = generateKeyPairSync('ed25519');
  const audit = generateKeyPairSync('ed25519');
  for (const d of ['admin-keys', 'audit', 'kek', 'tpm-ca']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'admin.key'), adminKey.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  writeFileSync(join(dir, 'admin-keys', 'admin.pub'), adminKey.publicKey.export({ format: 'pem', type: 'spki' }));
  writeFileSync(join(dir, 'audit', 'public.pem'), audit.publicKey.export({ format: 'pem', type: 'spki' }));
  writeFileSync(join(dir, 'kek', 'kek'), randomBytes(32).toString('hex'), { mode: 0o400 });
  writeFileSync(join(dir, 'tpm-ca', 'ca.pem'), (await createTestCa()).certPem);
  const storeUrl = await freshDb();
  const servers: CofferServer[] = [];
  try {
    for (const pod of ['a', 'b']) {
      // Each pod its own emptyDir data directory; TLS left out here (the manifests test runs it with TLS).
      const args: string[] = [];
      for (let i = 0; i < c.args.length; i++) {
        const a: string = c.args[i];
        if (a === '--tls-cert' || a === '--tls-key') {
          i++;
          continue;
        }
        const prev = c.args[i - 1];
        args.push(prev === '--port' ? '0' : prev === '--host' ? '127.0.0.1' : a
          .replace('/var/lib/coffer', join(dir, `data-${pod}`)).replace('/etc/coffer/kek', join(dir, 'kek')).replace('/etc/coffer/tpm-ca', join(dir, 'tpm-ca'))
          .replace('/etc/coffer/admin-keys', join(dir, 'admin-keys')).replace('/etc/coffer/node-trust-audit', join(dir, 'audit')));
      }
      servers.push(await spawnCofferServer(args, { env: { COFFER_KEK: '', COFFER_STORE_URL: storeUrl } }));
    }
    const [a, b] = servers.map((s) => s.url);
    for (const s of servers) assert.match(s.stdout(), /1 admin public key\(s\) from --admin-keys/);
    // The operator mints a token with the key whose public half the ConfigMap holds.
    const t = await cli(['admin-token', '--key', join(dir, 'admin.key')]);
    assert.equal(t.code, 0, t.err);
    const auth = { authorization: `Bearer ${t.out.trim()}` };
    const put = await fetch(`${a}/v1/admin/reference-values/shared`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ tees: ['tpm'] }) });
    assert.equal(put.status, 201, await put.text());
    const got = await fetch(`${b}/v1/admin/reference-values/shared`, { headers: auth });
    assert.equal(got.status, 200, 'the token written for replica a works on replica b');
    assert.deepEqual(JSON.parse(((await got.json()) as any).body), { tees: ['tpm'] });
    // A pod's own data-dir admin key is not an admin key any more.
    const own = await cli(['admin-token', '--data', join(dir, 'data-a')]);
    assert.equal(own.code, 0, own.err);
    for (const u of [a, b]) assert.equal((await fetch(`${u}/v1/admin/audit`, { headers: { authorization: `Bearer ${own.out.trim()}` } })).status, 401);
    // One signing key set in the shared store: both replicas publish the same JWKS.
    const jwks = await Promise.all([a, b].map(async (u) => ((await (await fetch(`${u}/.well-known/jwks.json`)).json()) as any).keys.map((k: any) => k.kid).sort()));
    assert.deepEqual(jwks[0], jwks[1]);
    assert.ok(jwks[0].length >= 1);
    // The controller's audit record lands once in the shared log, whichever replica receives it (or both).
    const rec = { id: 'feedfacecafebeef', node: 'node-9', from: 'trusted' as const, to: 'untrusted' as const, reason: 'AttestationExpired', message: 'expired', at: new Date().toISOString() };
    for (const u of [a, b]) {
      const sink = new NodeTrustAuditSink({ url: u, keyPem: audit.privateKey.export({ format: 'pem', type: 'pkcs8' }), identity: 'ctl', log: () => {} });
      sink.add(rec);
      await sink.drained();
      sink.stop();
      assert.equal(sink.stats.delivered + sink.stats.replays, 1);
    }
    for (const u of [a, b]) {
      const rows = ((await (await fetch(`${u}/v1/admin/audit?action=node-trust.untrusted`, { headers: auth })).json()) as any[]);
      assert.deepEqual(rows.map((r) => [r.target, r.result, r.details.transition]), [['node-9', 'AttestationExpired', 'feedfacecafebeef']]);
    }
  } finally {
    for (const s of servers) s.kill();
  }
});

test('tokens issued by either replica verify with the JWKS of one of them (signing keys live in PostgreSQL)', { skip }, async () => {
  const url = await freshDb();
  const kek = Kek.fromBytes(randomBytes(32));
  const adminPub = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const devKey = { ...privateKey.export({ format: 'jwk' }), kid: 'dev' } as any;
  const { d: _d, ...devPub } = devKey;
  const digest = 'c0'.repeat(32);
  const replicas: { app: Awaited<ReturnType<typeof buildAttestationApp>>['app']; service: Awaited<ReturnType<typeof buildAttestationApp>>['service']; store: PostgresStore }[] = [];
  for (let i = 0; i < 2; i++) {
    const store = await PostgresStore.open({ connectionString: url, kek });
    // Dev mode (the sample TEE) only to mint evidence in a test: the CLI refuses --dev on PostgreSQL.
    const { app, service } = await buildAttestationApp({ store, adminKeys: [adminPub], dev: true, issuer: 'https://coffer-attestation.coffer-system.svc', verifyOptions: { sample: { devKeys: [devPub], requireSignature: true } } });
    await app.ready();
    replicas.push({ app, service, store });
  }
  try {
    await replicas[0].store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'], measurements: { launch_digest: [digest] } }), 'test', Date.now());
    const tokens: string[] = [];
    for (const r of replicas) {
      const { nonce } = (await r.app.inject({ method: 'POST', url: '/v1/challenge' })).json();
      const runtimeData = { node: 'n1' };
      const rd = createHash('sha512').update(bindingValue(Buffer.from(nonce, 'base64'), runtimeData)).digest();
      const evidence = Buffer.from(JSON.stringify(makeSampleEvidence(rd, { devKey, launchDigest: digest }))).toString('base64');
      const res = await r.app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence, nonce, runtimeData } });
      assert.equal(res.statusCode, 200, res.body);
      tokens.push(res.json().token);
    }
    // A nonce issued by one replica is redeemable at the other (shared nonces table).
    const { nonce } = (await replicas[0].app.inject({ method: 'POST', url: '/v1/challenge' })).json();
    const rd = createHash('sha512').update(bindingValue(Buffer.from(nonce, 'base64'), { node: 'n2' })).digest();
    const cross = await replicas[1].app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: Buffer.from(JSON.stringify(makeSampleEvidence(rd, { devKey, launchDigest: digest }))).toString('base64'), nonce, runtimeData: { node: 'n2' } } });
    assert.equal(cross.statusCode, 200, cross.body);
    tokens.push(cross.json().token);
    // Replica 1 has the default policy cached; a reference-value change written through replica 0 applies to
    // replica 1's very next attestation (the cache is checked against the shared document version counter).
    const attestAt = async (r: (typeof replicas)[number], node: string) => {
      const { nonce: n } = (await r.app.inject({ method: 'POST', url: '/v1/challenge' })).json();
      const d = createHash('sha512').update(bindingValue(Buffer.from(n, 'base64'), { node })).digest();
      return r.app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: Buffer.from(JSON.stringify(makeSampleEvidence(d, { devKey, launchDigest: digest }))).toString('base64'), nonce: n, runtimeData: { node } } });
    };
    assert.equal((await attestAt(replicas[1], 'n3')).json().status, 'affirming');
    await replicas[0].store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'], measurements: { launch_digest: ['c1'.repeat(32)] } }), 'test', Date.now());
    const changed = (await attestAt(replicas[1], 'n4')).json();
    assert.notEqual(changed.status, 'affirming', JSON.stringify(changed));
    assert.ok(changed.failures.length > 0, JSON.stringify(changed));
    const jwks = (await replicas[0].app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    const keys = createLocalJWKSet(jwks);
    for (const tok of tokens) {
      const { payload } = await jwtVerify(tok, keys, { issuer: 'https://coffer-attestation.coffer-system.svc' });
      assert.ok(payload.exp! > payload.iat!);
    }
    assert.equal(new Set(tokens.map((x) => decodeProtectedHeader(x).kid)).size, 1, 'the second replica signs with the key the first one created');
    // A rotation on replica 1 is picked up by replica 0's refresh: its JWKS verifies the new tokens too.
    await replicas[1].service.tokens.rotate(Date.now());
    await replicas[0].service.tokens.refresh(Date.now());
    const after = (await replicas[0].app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    assert.ok(after.keys.some((k: any) => k.kid === replicas[1].service.tokens.activeKid));
    assert.ok(after.keys.length >= 2, 'the retired key stays published for its tokens');
  } finally {
    for (const r of replicas) {
      await r.app.close();
      await r.store.close();
    }
  }
});
