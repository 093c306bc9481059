import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildKbsApp } from '../../src/kbs/index.js';
import type { AttestationService } from '../../src/attestation/service.js';
import { KbsClient, KbsClientError, sampleEvidenceProvider } from '../../src/kbs/client.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { ALLOW_ALL } from '../../src/kbs/resource-policy.js';
import { adminKeys, fakeClock, tempStore, type AdminKeys } from '../support/service.js';

const ERR = 'https://github.com/confidential-containers/kbs/errors/';

describe('KBS (Trustee protocol)', () => {
  const ts = tempStore();
  const clock = fakeClock();
  let app: FastifyInstance;
  let service: AttestationService;
  let adm: AdminKeys;
  let adminToken = '';
  // KbsClient over inject(): the real client code, no sockets.
  const injectFetch = (async (url: string, init: RequestInit = {}) => {
    const r = await app.inject({ method: (init.method ?? 'GET') as 'GET', url: new URL(url).pathname, headers: init.headers as Record<string, string>, payload: init.body instanceof Uint8Array ? Buffer.from(init.body) : (init.body as string) });
    return new Response(r.rawPayload.length ? r.rawPayload : null, { status: r.statusCode, headers: r.headers as Record<string, string> });
  }) as typeof fetch;
  const client = (admin = false) => new KbsClient('http://kbs', { fetch: injectFetch, adminToken: admin ? adminToken : undefined });

  before(async () => {
    adm = await adminKeys();
    adminToken = await adm.token({ sub: 'kbs-admin' });
    ({ app, service } = await buildKbsApp({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, clock: clock.now }));
    await service.store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'] }), 'setup', clock.now());
  });
  after(async () => {
    await app.close();
    await ts.cleanup();
  });

  test('auth: Challenge {nonce (32 bytes std base64), extra-params ""} and a kbs-session-id cookie (32 hex)', async () => {
    const r = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': { 'supported-hash-algorithms': ['sha384'] } } });
    assert.equal(r.statusCode, 200);
    const ch = r.json();
    assert.deepEqual(Object.keys(ch), ['nonce', 'extra-params']);
    assert.equal(ch['extra-params'], '');
    assert.equal(Buffer.from(ch.nonce, 'base64').length, 32);
    assert.match(String(r.headers['set-cookie']), /^kbs-session-id=[0-9a-f]{32}; Expires=/);
  });

  test('auth: version handshake is exact semver =0.4.0; unknown/unsupported TEEs and bad JSON are refused', async () => {
    for (const [payload, variant, status] of [
      [{ version: '0.1.1', tee: 'sample', 'extra-params': '' }, 'ProtocolVersion', 401],
      [{ version: '0.4.0-rc1', tee: 'sample', 'extra-params': '' }, 'ProtocolVersion', 401],
      [{ version: '0.4.0', tee: 'quantum', 'extra-params': '' }, 'SerdeError', 401],
      [{ version: '0.4.0', tee: 'cca', 'extra-params': '' }, 'AttestationError', 401],
      [{ version: '0.4.0', tee: 'sample' }, 'SerdeError', 401],
      ['{"version":', 'SerdeError', 401],
    ] as const) {
      const r = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: payload as object, headers: { 'content-type': 'application/json' } });
      assert.equal(r.statusCode, status, JSON.stringify(payload));
      assert.equal(r.json().type, ERR + variant);
      assert.match(r.headers['content-type'] as string, /^application\/problem\+json/);
    }
    const v = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.1.1', tee: 'sample', 'extra-params': '' } });
    assert.equal(v.json().detail, 'KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.1');
  });

  test('full RCAR: report data = SHA-384(JCS{tee-pubkey, nonce, additional-evidence}); token has cpu0 + tee-pubkey', async () => {
    const c = client();
    const token = await c.attest('sample', sampleEvidenceProvider());
    const p = decodeJwt(token);
    const cpu0 = (p.submods as Record<string, Record<string, unknown>>).cpu0;
    assert.equal(cpu0['ear.status'], 'affirming');
    const ae = cpu0['ear.veraison.annotated-evidence'] as Record<string, Record<string, unknown>>;
    assert.deepEqual(ae.runtime_data_claims['tee-pubkey'], c.teePubKey);
    assert.equal(ae.sample.launch_digest, 'abcde');
    const rd = createHash('sha384').update(canonicalJson({ 'tee-pubkey': c.teePubKey, nonce: ae.runtime_data_claims.nonce, 'additional-evidence': '' })).digest('base64');
    assert.equal(ae.report_data, rd);
  });

  test('sample primary evidence given as JSON text (string) is accepted too', async () => {
    const c = client();
    const t = await c.attest('sample', (rd) => JSON.stringify({ svn: '1', report_data: Buffer.from(rd).toString('base64') }));
    assert.equal(((decodeJwt(t).submods as Record<string, Record<string, unknown>>).cpu0)['ear.status'], 'affirming');
  });

  test('attest: wrong nonce, evidence for another key, no session, expired session → 401', async () => {
    const auth = async () => {
      const r = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
      return { cookie: String(r.headers['set-cookie']).split(';')[0], nonce: r.json().nonce as string };
    };
    const ecKey = () => {
      const j = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
      return { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: j.x!, y: j.y! };
    };
    const key = ecKey();
    const body = (nonce: string, rdKey = key) => ({
      'runtime-data': { nonce, 'tee-pubkey': key },
      'tee-evidence': { primary_evidence: { svn: '1', report_data: createHash('sha384').update(canonicalJson({ 'tee-pubkey': rdKey, nonce, 'additional-evidence': '' })).digest('base64') }, additional_evidence: '' },
    });
    let s = await auth();
    let r = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: body('bm9wZQ=='), headers: { cookie: s.cookie } });
    assert.equal(r.statusCode, 401);
    assert.match(r.json().detail, /nonce does not match/);
    s = await auth();
    r = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: body(s.nonce, ecKey()), headers: { cookie: s.cookie } });
    assert.equal(r.statusCode, 401);
    assert.equal(r.json().type, ERR + 'AttestationError');
    assert.match(r.json().detail, /NONCE_MISMATCH/);
    r = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: body(s.nonce) });
    assert.equal(r.json().type, ERR + 'SessionExpired');
    s = await auth();
    clock.advance(5 * 60_000 + 1);
    r = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: body(s.nonce), headers: { cookie: s.cookie } });
    assert.equal(r.json().type, ERR + 'SessionExpired');
    s = await auth();
    r = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: body(s.nonce), headers: { cookie: s.cookie } });
    assert.equal(r.statusCode, 200, r.body);
  });

  test('resources: default deny, policy per resource, JWE release to the attested key, audit of every decision', async () => {
    const a = client(true);
    await a.setResource('default/key/db', new TextEncoder().encode('s3cr3t'));
    await a.setResource('other/key/x', new TextEncoder().encode('nope'));
    const c = client();
    await c.attest('sample', sampleEvidenceProvider());
    await assert.rejects(c.getResource('default/key/db'), (e: KbsClientError) => e.status === 403 && e.type === ERR + 'PolicyDeny');
    // --allow-all never covers the dev-only sample TEE: only a rule naming it in tees does (Trustee's default refuses it).
    await a.setResourcePolicy(JSON.stringify(ALLOW_ALL));
    await assert.rejects(c.getResource('default/key/db'), (e: KbsClientError) => e.status === 403 && e.type === ERR + 'PolicyDeny' && /sample TEE/.test(e.message));
    await a.setResourcePolicy(JSON.stringify({ rules: [{ resources: ['default/key/*'], tees: ['sample'], status: ['affirming'], measurements: { launch_digest: ['abcde'] } }] }));
    assert.equal(new TextDecoder().decode(await c.getResource('default/key/db')), 's3cr3t');
    await assert.rejects(c.getResource('other/key/x'), (e: KbsClientError) => e.type === ERR + 'PolicyDeny');
    await assert.rejects(c.getResource('default/key/missing'), (e: KbsClientError) => e.type === ERR + 'PluginInternalError');
    // Bearer token path (no cookie) works for the token holder; without any token → TokenNotFound.
    const fresh = client();
    await assert.rejects(fresh.getResource('default/key/db'), (e: KbsClientError) => e.type === ERR + 'TokenNotFound');
    await assert.rejects(fresh.getResource('default/key/db', c.lastToken), /decryption|decrypt|JWE/i); // encrypted to c's key, not fresh's
    await assert.rejects(fresh.getResource('default/key/db', 'a.b.c'), (e: KbsClientError) => e.type === ERR + 'TokenVerifierError');
    const bad = await app.inject({ url: '/kbs/v0/resource/a/b', headers: {} });
    assert.equal(bad.statusCode, 404);
    assert.equal(bad.json().type, ERR + 'InvalidRequestPath');
    assert.equal((await app.inject({ url: '/kbs/v0/nothing' })).json().type, ERR + 'PluginNotFound');
    const audit = await service.store.listAudit({ action: 'resource.get', limit: 100 });
    const released = audit.find((e) => e.result === 'released')!;
    assert.equal(released.target, 'default/key/db');
    assert.equal(released.actor, 'tee:sample');
    assert.equal((released.details as { evidenceDigest: string }).evidenceDigest.length, 64);
    assert.match((released.details as { policy: string }).policy, /^resource-policy@v2$/);
    assert.ok(audit.some((e) => e.result === 'denied' && /default deny/.test(String((e.details as { reason: string }).reason))));
  });

  test('attestation policy via KBS admin (default_cpu) drives the EAR status; Rego is refused with an explanation', async () => {
    const a = client(true);
    await assert.rejects(a.setAttestationPolicy('package policy\ndefault allow = true', 'default_cpu', 'rego'), (e: KbsClientError) => e.type === ERR + 'ParsePolicyError' && /Rego is not supported/.test(e.message));
    await a.setAttestationPolicy('referenceValues: default\nrules:\n  - {id: svn, claim: svns.svn, gte: 5, status: contraindicated, reason: sample svn too old}\n');
    const c = client();
    const t = decodeJwt(await c.attest('sample', sampleEvidenceProvider()));
    const cpu0 = (t.submods as Record<string, Record<string, unknown>>).cpu0;
    assert.equal(cpu0['ear.status'], 'contraindicated');
    assert.equal(cpu0['ear.appraisal-policy-id'], 'default_cpu@v1');
    // Contraindicated: refused before any rule, even by a policy whose rule would match everything else.
    await assert.rejects(c.getResource('default/key/db'), (e: KbsClientError) => e.status === 403 && e.type === ERR + 'PolicyDeny' && /contraindicated: nothing is released/.test(e.message));
    await a.setResourcePolicy(JSON.stringify({ rules: [{ resources: ['*/*/*'], tees: ['sample'] }] }));
    await assert.rejects(c.getResource('default/key/db'), (e: KbsClientError) => e.status === 403 && /contraindicated/.test(e.message));
    await assert.rejects(a.setResourcePolicy(JSON.stringify({ rules: [{ resources: ['*/*/*'], status: ['contraindicated'] }] })), (e: KbsClientError) => e.type === ERR + 'ParsePolicyError');
    const denied = (await service.store.listAudit({ action: 'resource.get', limit: 500 })).filter((e) => e.result === 'denied' && (e.details as { status?: string }).status === 'contraindicated');
    assert.ok(denied.length >= 2);
    await a.setResourcePolicy(JSON.stringify({ rules: [{ resources: ['default/key/*'], tees: ['sample'], status: ['affirming'], measurements: { launch_digest: ['abcde'] } }] }));
    await a.setAttestationPolicy('referenceValues: default\n');
  });

  test('sessions: attest does not extend the 5-minute session; re-POSTing /attest returns the stored token', async () => {
    const c = client();
    const t1 = await c.attest('sample', sampleEvidenceProvider());
    // Same session, second attest: the stored token comes back without re-verifying.
    const again = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: {}, headers: { cookie: `kbs-session-id=${(c as unknown as { cookie: string }).cookie}` } });
    assert.equal(again.json().token, t1);
    clock.advance(4 * 60_000);
    assert.equal(new TextDecoder().decode(await c.getResource('default/key/db')), 's3cr3t');
    clock.advance(61_000);
    await assert.rejects(c.getResource('default/key/db'), (e: KbsClientError) => e.type === ERR + 'TokenNotFound');
  });

  test('admin endpoints: 401 without, with a wrong, or with an expired admin token', async () => {
    const other = await adminKeys();
    for (const auth of [undefined, `Bearer ${await other.token()}`, `Bearer ${await adm.token({ expSeconds: -5 })}`]) {
      for (const [method, url, payload] of [
        ['POST', '/kbs/v0/resource/a/b/c', 'x'], ['DELETE', '/kbs/v0/resource/a/b/c', undefined],
        ['POST', '/kbs/v0/resource-policy', { policy: 'e30' }], ['GET', '/kbs/v0/resource-policy', undefined],
        ['POST', '/kbs/v0/attestation-policy', { policy: 'e30' }],
      ] as const) {
        const r = await app.inject({ method, url, payload: payload as string, headers: { ...(auth ? { authorization: auth } : {}), 'content-type': typeof payload === 'string' ? 'application/octet-stream' : 'application/json' } });
        assert.equal(r.statusCode, 401, `${method} ${url}`);
        assert.equal(r.json().type, ERR + 'AdminAuthAccess');
      }
    }
    const bad = await app.inject({ method: 'POST', url: '/kbs/v0/resource-policy', payload: { policy: Buffer.from('{"rules":[{"resources":["a/b"]}]}').toString('base64url') }, headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(bad.json().type, ERR + 'ParsePolicyError');
  });
});
