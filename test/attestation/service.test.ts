import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { bindingValue, decodeBase64, type AttestationService } from '../../src/attestation/service.js';
import { HttpProblem } from '../../src/attestation/problem.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { adminKeys, fakeClock, tempStore, type AdminKeys } from '../support/service.js';

const sampleEvidence = (reportData: Uint8Array) =>
  Buffer.from(JSON.stringify({ svn: '1', report_data: Buffer.from(reportData).toString('base64') })).toString('base64');

test('decodeBase64: both alphabets, with or without padding; anything else is a bad-encoding problem', () => {
  const bytes = Buffer.from([0xfb, 0xff, 0xfe, 0x01, 0x02]);
  for (const text of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('base64').replace(/=+$/, '')]) {
    assert.deepEqual(Buffer.from(decodeBase64(text, 'x')), bytes, text);
  }
  assert.equal(decodeBase64('', 'x').length, 0);
  // Small and large (not pooled) decodes: plain Uint8Arrays covering exactly the decoded bytes, nothing shared.
  for (const n of [5, 100, 4095, 4096, 20_000]) {
    const big = Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
    const out = decodeBase64(big.toString('base64'), 'x');
    assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
    assert.equal(out.buffer.byteLength, n);
    assert.deepEqual(Buffer.from(out), big);
  }
  for (const text of ['ab c', 'ab=c', 'abc===', 'ab*d', 'a', 'ab\u00e9d', '====', 'YQ==YQ==']) {
    assert.throws(() => decodeBase64(text, 'evidence'), (e: unknown) => e instanceof HttpProblem && e.status === 400 && e.slug === 'bad-encoding' && /evidence is not base64/.test(e.detail), text);
  }
});

describe('attestation service', () => {
  const ts = tempStore();
  const clock = fakeClock();
  let app: FastifyInstance;
  let service: AttestationService;
  let adm: AdminKeys;
  let upstream: Server;
  let upstreamUrl = '';

  before(async () => {
    adm = await adminKeys();
    upstream = createServer((req, res) => {
      if (req.url === '/sgx/certification/v4/tcb?fmspc=00906ED50000') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ tcbInfo: { nextUpdate: new Date(clock.now() + 60_000).toISOString() } }));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    ({ app, service } = await buildAttestationApp({
      store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, clock: clock.now, bodyLimit: 64 * 1024,
      collateral: { upstreams: { pcs: upstreamUrl }, items: [{ key: 'pcs/tcb/00906ED50000', tee: 'sample', upstream: 'pcs', path: 'sgx/certification/v4/tcb?fmspc=00906ED50000' }] },
    }));
  });
  after(async () => {
    await app.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await ts.cleanup();
  });

  const challenge = async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/challenge' });
    assert.equal(r.statusCode, 201);
    return r.json() as { nonce: string; expiresAt: string };
  };
  const attest = (body: unknown) => app.inject({ method: 'POST', url: '/v1/attest', payload: body as object });
  const asAdmin = async (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: method as 'GET', url, payload: payload as string, headers: { authorization: `Bearer ${await adm.token()}`, ...headers } });
  const jwks = async () => createLocalJWKSet((await app.inject({ url: '/.well-known/jwks.json' })).json());

  test('challenge → attest with sample evidence: default policy refuses sample (contraindicated, explained)', async () => {
    const { nonce, expiresAt } = await challenge();
    assert.equal(Buffer.from(nonce, 'base64').length, 32);
    assert.ok(Date.parse(expiresAt) > clock.now());
    const r = await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.from(nonce, 'base64')), nonce });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json();
    assert.equal(body.status, 'contraindicated');
    assert.equal(body.failures[0].code, 'SAMPLE_NOT_ALLOWED');
    const { payload } = await jwtVerify(body.token, await jwks(), { currentDate: new Date(clock.now()) });
    const sub = (payload.submods as Record<string, Record<string, unknown>>).sample;
    assert.equal(sub['ear.status'], 'contraindicated');
    assert.equal((sub['ear.trustworthiness-vector'] as Record<string, number>).hardware, 96);
  });

  test('admin reference values naming sample → affirming EAR token with normalized claims, eat_nonce, 5-minute exp', async () => {
    const put = await asAdmin('PUT', '/v1/admin/reference-values/default', { tees: ['sample'], measurements: { launch_digest: ['abcde'] }, minSvns: { svn: 1 } });
    assert.equal(put.statusCode, 201, put.body);
    const { nonce } = await challenge();
    const r = await attest({ tee: 'sample', evidence: sampleEvidence(createHash('sha512').update(Buffer.from(nonce, 'base64')).digest()), nonce });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().status, 'affirming');
    const { payload, protectedHeader } = await jwtVerify(r.json().token, await jwks(), { currentDate: new Date(clock.now()) });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.eat_nonce, nonce);
    assert.equal(payload.eat_profile, 'tag:github.com,2023:veraison/ear');
    assert.ok((payload['ear.verifier-id'] as Record<string, string>).build);
    assert.equal(payload.exp! - payload.iat!, 300);
    const sub = (payload.submods as Record<string, Record<string, unknown>>).sample;
    assert.equal(sub['ear.status'], 'affirming');
    assert.equal(sub['ear.appraisal-policy-id'], 'default@builtin');
    const ae = sub['ear.veraison.annotated-evidence'] as Record<string, unknown>;
    assert.equal(ae.tee, 'sample');
    assert.deepEqual(ae.svns, { svn: 1 });
    assert.equal(payload.cnf, undefined);
  });

  test('runtime key binding: report data = SHA-384(nonce || JCS{runtime-data, tee-pubkey}); cnf.jwk carries the key', async () => {
    const { nonce } = await challenge();
    const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) } as Record<string, unknown>;
    const runtimeData = { workload: 'w1' };
    const expectB = Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(canonicalJson({ 'runtime-data': runtimeData, 'tee-pubkey': jwk }))]);
    assert.deepEqual(Buffer.from(bindingValue(Buffer.from(nonce, 'base64'), runtimeData, jwk as never)), expectB);
    const rd = createHash('sha384').update(expectB).digest();
    const r = await attest({ tee: 'sample', evidence: sampleEvidence(rd), nonce, runtimeData, publicKey: jwk });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(decodeJwt(r.json().token).cnf, { jwk });
    // The same evidence with a different key does not bind (evidence for another key).
    const { nonce: n2 } = await challenge();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const b2 = Buffer.concat([Buffer.from(n2, 'base64'), Buffer.from(canonicalJson({ 'runtime-data': runtimeData, 'tee-pubkey': jwk }))]);
    const r2 = await attest({ tee: 'sample', evidence: sampleEvidence(createHash('sha384').update(b2).digest()), nonce: n2, runtimeData, publicKey: other });
    assert.equal(r2.statusCode, 400);
    assert.equal(r2.json().type, 'https://coffer.dev/problems/nonce-mismatch');
  });

  test('nonces: replayed → 409, unknown → 400, expired → 400, wrong binding → 400; all problem+json', async () => {
    const { nonce } = await challenge();
    const ev = sampleEvidence(Buffer.from(nonce, 'base64'));
    assert.equal((await attest({ tee: 'sample', evidence: ev, nonce })).statusCode, 200);
    const replay = await attest({ tee: 'sample', evidence: ev, nonce });
    assert.equal(replay.statusCode, 409);
    assert.equal(replay.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(replay.json().type, 'https://coffer.dev/problems/nonce-replayed');
    const unknown = await attest({ tee: 'sample', evidence: ev, nonce: Buffer.alloc(32, 1).toString('base64') });
    assert.equal(unknown.json().type, 'https://coffer.dev/problems/nonce-unknown');
    assert.equal(unknown.statusCode, 400);
    const { nonce: n3 } = await challenge();
    clock.advance(5 * 60_000 + 1);
    const expired = await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.from(n3, 'base64')), nonce: n3 });
    assert.equal(expired.json().type, 'https://coffer.dev/problems/nonce-expired');
    const { nonce: n4 } = await challenge();
    const wrong = await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.alloc(32, 9)), nonce: n4 });
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json().type, 'https://coffer.dev/problems/nonce-mismatch');
  });

  test('bad input is 4xx problem JSON, never 500', async () => {
    const { nonce } = await challenge();
    const cases: [() => Promise<{ statusCode: number; json(): { type: string } }>, number, string][] = [
      [() => app.inject({ method: 'POST', url: '/v1/attest', payload: '{"tee":', headers: { 'content-type': 'application/json' } }), 400, 'malformed-json'],
      [() => app.inject({ method: 'POST', url: '/v1/attest', payload: JSON.stringify({ tee: 'sample', evidence: 'A'.repeat(70 * 1024), nonce }), headers: { 'content-type': 'application/json' } }), 413, 'body-too-large'],
      [() => attest({ tee: 'quantum', evidence: 'AA==', nonce }), 400, 'unknown-tee'],
      [() => attest({ tee: 'sample', evidence: '***', nonce }), 400, 'bad-encoding'],
      [() => attest({ tee: 'sample', nonce }), 400, 'invalid-request'],
      [() => attest({ tee: 'sample', evidence: 'AA==', nonce, extra: 1 }), 400, 'invalid-request'],
      [() => attest({ tee: 'sample', evidence: 'AA==', nonce, publicKey: { kty: 'EC', d: 'x' } }), 400, 'bad-public-key'],
      [() => app.inject({ method: 'POST', url: '/v1/attest', payload: 'x', headers: { 'content-type': 'application/xml' } }), 415, 'unsupported-media-type'],
      [() => app.inject({ method: 'GET', url: '/v1/nothing' }), 404, 'not-found'],
      [() => attest({ tee: 'sample', evidence: Buffer.from('{"svn":"x"}').toString('base64'), nonce }), 422, 'evidence-rejected'],
    ];
    for (const [run, status, slug] of cases) {
      const r = await run();
      assert.equal(r.statusCode, status, `${slug}: ${JSON.stringify(r.json())}`);
      assert.equal(r.json().type, `https://coffer.dev/problems/${slug}`);
    }
  });

  test('admin API: unauthenticated, wrong-key and expired tokens → 401 on every admin route', async () => {
    const other = await adminKeys('ES256');
    const routes: [string, string][] = [
      ['GET', '/v1/admin/policies'], ['PUT', '/v1/admin/policies/x'], ['DELETE', '/v1/admin/reference-values/default'],
      ['GET', '/v1/admin/audit'], ['POST', '/v1/admin/keys/rotate'], ['GET', '/v1/admin/anything/else'],
    ];
    for (const [method, url] of routes) {
      for (const auth of [undefined, `Bearer ${await other.token()}`, `Bearer ${await adm.token({ expSeconds: -10 })}`, 'Basic abc']) {
        const r = await app.inject({ method: method as 'GET', url, payload: method === 'PUT' ? { rules: [] } : undefined, headers: auth ? { authorization: auth } : {} });
        assert.equal(r.statusCode, 401, `${method} ${url} with ${auth?.slice(0, 12)}`);
        assert.equal(r.json().type, 'https://coffer.dev/problems/admin-unauthenticated');
      }
    }
  });

  test('admin API: versioned policies with rules, YAML bodies, invalid documents refused, audit trail', async () => {
    const yaml = 'referenceValues: default\nrules:\n  - id: svn-min\n    claim: svns.svn\n    gte: 2\n    status: warning\n    vector: hardware\n    reason: firmware too old\n';
    const p1 = await asAdmin('PUT', '/v1/admin/policies/fleet', yaml, { 'content-type': 'application/yaml' });
    assert.equal(p1.statusCode, 201, p1.body);
    const p2 = await asAdmin('PUT', '/v1/admin/policies/fleet', { referenceValues: 'default', rules: [{ id: 'svn-min', claim: 'svns.svn', gte: 1 }] });
    assert.equal(p2.json().version, 2);
    assert.equal((await asAdmin('GET', '/v1/admin/policies/fleet?version=1')).json().body, yaml);
    assert.deepEqual((await asAdmin('GET', '/v1/admin/policies')).json().map((d: { id: string; version: number }) => [d.id, d.version]), [['fleet', 2]]);
    const bad = await asAdmin('PUT', '/v1/admin/policies/fleet', { rules: [{ id: 'x', claim: 'svns.svn', gte: 'high' }] });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().type, 'https://coffer.dev/problems/document-invalid');
    // Rollback to v1 content (warning rule) and attest with it.
    await asAdmin('PUT', '/v1/admin/policies/fleet', yaml, { 'content-type': 'application/yaml' });
    const { nonce } = await challenge();
    const r = await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.from(nonce, 'base64')), nonce, policyId: 'fleet' });
    assert.equal(r.json().status, 'warning');
    assert.match(r.json().failures[0].message, /firmware too old: svns.svn is 1, expected gte 2/);
    assert.equal(decodeJwt(r.json().token).submods && (decodeJwt(r.json().token).submods as Record<string, Record<string, unknown>>).sample['ear.appraisal-policy-id'], 'fleet@v3');
    const unknown = await attest({ tee: 'sample', evidence: 'AA==', nonce: (await challenge()).nonce, policyId: 'nope' });
    assert.equal(unknown.json().type, 'https://coffer.dev/problems/policy-unknown');
    assert.equal((await asAdmin('DELETE', '/v1/admin/policies/fleet')).statusCode, 204);
    assert.equal((await asAdmin('GET', '/v1/admin/policies/fleet')).statusCode, 404);
    const audit = (await asAdmin('GET', '/v1/admin/audit?action=policy.put')).json();
    assert.equal(audit.length, 3);
    assert.equal(audit[0].actor, 'test-admin');
    const attests = (await asAdmin('GET', '/v1/admin/audit?action=attest&limit=1000')).json();
    assert.ok(attests.some((a: { result: string; details: { evidenceDigest?: string } }) => a.result === 'warning' && a.details.evidenceDigest?.length === 64));
  });

  test('key rotation: old tokens keep verifying via JWKS until they expire, then the old key is dropped', async () => {
    const { nonce } = await challenge();
    const before = (await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.from(nonce, 'base64')), nonce })).json().token;
    const rot = await asAdmin('POST', '/v1/admin/keys/rotate');
    assert.equal(rot.statusCode, 200);
    const set = (await app.inject({ url: '/.well-known/jwks.json' })).json();
    assert.equal(set.keys.length, 2);
    assert.ok(set.keys.every((k: Record<string, unknown>) => k.d === undefined && k.kid));
    await jwtVerify(before, createLocalJWKSet(set), { currentDate: new Date(clock.now()) });
    clock.advance(361_000);
    assert.equal((await app.inject({ url: '/.well-known/jwks.json' })).json().keys.length, 1);
    const disc = (await app.inject({ url: '/.well-known/openid-configuration', headers: { host: 'as.example:1234' } })).json();
    assert.equal(disc.jwks_uri, 'http://as.example:1234/.well-known/jwks.json');
    assert.deepEqual(disc.id_token_signing_alg_values_supported, ['ES256']);
  });

  test('collateral: fetched from a loopback upstream into the store, served while the upstream is down, stale reported', async () => {
    const refresh = await asAdmin('POST', '/v1/admin/collateral/refresh');
    assert.deepEqual(refresh.json().map((r: { ok: boolean }) => r.ok), [true]);
    let st = (await asAdmin('GET', '/v1/admin/collateral')).json();
    assert.equal(st[0].stale, false);
    assert.equal(st[0].source, `${upstreamUrl}/sgx/certification/v4/tcb?fmspc=00906ED50000`);
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    const down = await service.collateral!.refresh();
    assert.equal(down[0].ok, false);
    assert.ok(await service.collateral!.get('pcs/tcb/00906ED50000'));
    clock.advance(120_000);
    st = (await asAdmin('GET', '/v1/admin/collateral')).json();
    assert.equal(st[0].stale, true);
    const { nonce } = await challenge();
    const r = await attest({ tee: 'sample', evidence: sampleEvidence(Buffer.from(nonce, 'base64')), nonce });
    assert.equal(r.json().status, 'warning');
    assert.ok(r.json().failures.some((f: { code: string }) => f.code === 'COLLATERAL_STALE'));
  });
});

test('outside dev mode the sample TEE is not even registered', async () => {
  const ts = tempStore();
  const { app } = await buildAttestationApp({ store: ts.store, adminKeys: [] });
  try {
    const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json();
    const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: sampleEvidence(Buffer.from(nonce, 'base64')), nonce } });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().type, 'https://coffer.dev/problems/unknown-tee');
    // No admin key configured: admin calls are refused, never open.
    assert.equal((await app.inject({ url: '/v1/admin/policies' })).statusCode, 401);
  } finally {
    await app.close();
    await ts.cleanup();
  }
});
