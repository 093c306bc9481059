import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createAttestationService } from '../../src/attestation/index.js';
import { createHttpApp } from '../../src/attestation/http.js';
import { attestationRoutes, isAdminPath } from '../../src/attestation/routes.js';
import { kbsRoutes } from '../../src/kbs/routes.js';
import { adminKeys, tempStore, type AdminKeys } from '../support/service.js';

const ERR = 'https://github.com/confidential-containers/kbs/errors/';

/** Both surfaces on one app, as `coffer up` mounts them, with a small body limit to reach 413 cheaply. */
describe('admin routes authenticate before they parse', () => {
  const ts = tempStore();
  let app: FastifyInstance;
  let adm: AdminKeys;
  before(async () => {
    adm = await adminKeys();
    const { service, admin } = await createAttestationService({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true });
    app = createHttpApp({ bodyLimit: 4096 });
    await app.register(attestationRoutes, { service, admin });
    await app.register(kbsRoutes, { prefix: '/kbs', service, admin });
  });
  after(async () => {
    await app.close();
    await ts.cleanup();
  });

  const big = 'x'.repeat(10_000);
  /** [method, url, content-type, body]: each of these answers 400/404/413/415 to an authenticated caller. */
  const hostile: [string, string, string | undefined, string | undefined][] = [
    ['PUT', '/v1/admin/policies/p1', 'application/xml', '<a/>'], // 415
    ['PUT', '/v1/admin/policies/p1', 'application/json', big], // 413
    ['PUT', '/v1/admin/policies/p1', 'application/json', '{"rules": ['], // 400 bad JSON
    ['PUT', '/v1/admin/policies/bad%20id!', 'application/json', '{}'], // 400 schema
    ['GET', '/v1/admin/nothing/here', undefined, undefined], // 404
    ['PATCH', '/v1/admin/policies/p1', 'application/json', '{}'], // no such method
    ['POST', '/v1/admin/keys/rotate', 'text/html', big],
    ['GET', `/v1/admin/audit?limit=${'9'.repeat(2000)}`, undefined, undefined],
    ['GET', '/v1/admin/policies/' + 'a'.repeat(300), undefined, undefined], // longer than a route param
    ['GET', '/v1/admin/policies/%zz%', undefined, undefined], // undecodable URL
    ['POST', '/kbs/v0/resource/a/b/c', 'application/octet-stream', big], // 413
    ['POST', '/kbs/v0/resource/a/b', 'application/octet-stream', 'x'], // invalid path (404)
    ['POST', '/kbs/v0/resource-policy', 'application/json', '{"policy":'], // bad JSON
    ['POST', '/kbs/v0/resource-policy', 'application/xml', '<p/>'],
    ['POST', '/kbs/v0/attestation-policy', 'application/json', big],
    ['DELETE', '/kbs/v0/resource/a/b/c/d', undefined, undefined], // invalid path (404)
    ['GET', '/kbs/v0/resource-policy', undefined, undefined],
    ['POST', '/kbs/v0/resource-policy/more', 'application/json', '{}'], // no such route (404)
    ['DELETE', '/kbs/v0/resource/%zz%/b/c', undefined, undefined], // undecodable URL
  ];

  test('without a valid admin token every admin request is 401, whatever its body, content type, size or path', async () => {
    const other = await adminKeys();
    const auths: [string, string | undefined][] = [
      ['no token', undefined],
      ['garbage', 'Bearer not-a-jwt'],
      ['another key', `Bearer ${await other.token()}`],
      ['expired', `Bearer ${await adm.token({ expSeconds: -10 })}`],
      ['no audience', `Bearer ${await adm.token({ aud: null })}`],
      ['wrong audience', `Bearer ${await adm.token({ aud: 'coffer-attestation' })}`],
      ['no issuer', `Bearer ${await adm.token({ iss: null })}`],
      ['wrong issuer', `Bearer ${await adm.token({ iss: 'someone-else' })}`],
      ['Basic auth', 'Basic YWRtaW46YWRtaW4='],
    ];
    for (const [why, auth] of auths) {
      for (const [method, url, ct, body] of hostile) {
        const r = await app.inject({ method: method as 'GET', url, payload: body, headers: { ...(ct ? { 'content-type': ct } : {}), ...(auth ? { authorization: auth } : {}) } });
        assert.equal(r.statusCode, 401, `${why}: ${method} ${url.slice(0, 60)} → ${r.statusCode} ${r.body.slice(0, 200)}`);
        if (url.startsWith('/kbs')) assert.equal(r.json().type, ERR + 'AdminAuthAccess');
        else assert.match(r.json().type, /admin-unauthenticated$/);
      }
    }
    // Every refusal is in the audit log (path only, never the body).
    const audit = await ts.store.listAudit({ limit: 1000 });
    const denied = audit.filter((e) => e.result === 'denied' && e.actor === 'unauthenticated');
    // (An undecodable URL is refused by fastify's frameworkErrors before any hook, so it has no audit record.)
    const undecodable = hostile.filter(([, url]) => url.includes('%zz')).length;
    assert.equal(denied.length, auths.length * (hostile.length - undecodable));
    assert.ok(denied.every((e) => !JSON.stringify(e).includes('xxxxxxxxxx')));
  });

  test('with a valid token the same requests get their real answers (the 401 above is not a blanket refusal)', async () => {
    const auth = `Bearer ${await adm.token()}`;
    const codes = [];
    for (const [method, url, ct, body] of hostile) {
      const r = await app.inject({ method: method as 'GET', url, payload: body, headers: { ...(ct ? { 'content-type': ct } : {}), authorization: auth } });
      codes.push(r.statusCode);
    }
    // KBS parse errors are 401 SerdeError by Trustee's own mapping; what matters is that they come from the parser now.
    assert.deepEqual(codes, [415, 413, 400, 400, 404, 404, 415, 200, 404, 401, 413, 404, 401, 401, 413, 404, 200, 404, 401]);
  });

  test('admin paths in any spelling are recognised', () => {
    for (const p of ['/v1/admin', '/v1/admin/', '/v1/admin/x?y', '//v1//admin/x', '/V1/Admin/x', '/v1/%61dmin/x']) assert.equal(isAdminPath(p), true, p);
    for (const p of ['/v1/administrator', '/v1/attest', '/kbs/v0/auth']) assert.equal(isAdminPath(p), false, p);
  });

  test('the raw-URL fast path (no percent-encoding) judges exactly as split + decode does', () => {
    // The rule as first written: the path before '?', percent-decoded (undecodable: as written), then the regex.
    const reference = (url: string) => {
      const p = url.split('?')[0];
      let d = p;
      try {
        d = decodeURIComponent(p);
      } catch {
        /* as written */
      }
      return /^\/+v1\/+admin(\/|$)/i.test(d);
    };
    const parts = ['/', '//', 'v1', 'V1', 'admin', 'ADMIN', 'adminx', 'attest', '?', '?x=/v1/admin', '#', '%2F', '%61', '%', '%zz', '/x', ''];
    let n = 0;
    // Every URL of up to four parts: all orders, so '?' lands before, inside and after the admin segment.
    const walk = (url: string, depth: number) => {
      assert.equal(isAdminPath(url), reference(url), url);
      n++;
      if (depth < 4) for (const p of parts) walk(url + p, depth + 1);
    };
    walk('', 0);
    for (const u of ['/v1/admin?', '/v1//admin?a', '/v1/admin#/x', '/v1?/admin', '///v1///admin', '/v1/admin/%', '/v1/%61dmin?x']) assert.equal(isAdminPath(u), reference(u), u);
    assert.ok(n > 80_000);
  });
});
