/**
 * The dashboard's security rules over real HTTP against `coffer up --dev`: viewer tokens read and never write, the
 * session cookie's attributes, CSRF on every write through a session (a cross-site POST without it is refused),
 * 401 for every unauthenticated read, bounded queries and evidence, no secret in what the read API returns.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { adminKeys, tempStore } from '../support/service.js';
import { AdminAuth } from '../../src/attestation/admin-auth.js';
import { DashboardSessions } from '../../src/attestation/dashboard/session.js';
import { advisoryUrl, sanitizeRecord } from '../../src/attestation/dashboard/views.js';

const SECRET = 'kbs-secret-value-9d41';

describe('dashboard security (coffer up --dev over HTTP)', () => {
  let dir: string;
  let server: CofferServer;
  let url: string;
  let admin: string;
  let viewer: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-ui-sec-'));
    server = await spawnCofferServer(['up', '--dev', '--port', '0', '--data', dir, '--swtpm', 'off', '--pcs-url', 'off', '--kds-url', 'off'], { timeoutMs: 120_000 });
    url = server.url;
    admin = (await cli(['admin-token', '--data', dir])).out.trim();
    const v = await cli(['admin-token', '--data', dir, '--viewer']);
    assert.equal(v.code, 0, v.err);
    viewer = v.out.trim();
  });
  after(() => {
    server?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const bearer = (t: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${t}`, ...extra });

  async function login(token: string, headers: Record<string, string> = {}) {
    const r = await fetch(`${url}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
    const setCookie = r.headers.get('set-cookie') ?? '';
    const body = r.status === 200 ? ((await r.json()) as { csrf: string; role: string }) : undefined;
    return { status: r.status, setCookie, cookie: setCookie.split(';')[0], csrf: body?.csrf ?? '', role: body?.role };
  }

  test('unauthenticated reads get 401 problem+json, like the admin API', async () => {
    for (const [method, path] of [['GET', '/v1/dashboard/overview'], ['GET', '/v1/dashboard/audit'], ['GET', '/v1/dashboard/kbs'], ['GET', '/v1/dashboard/cluster'], ['GET', '/v1/dashboard/events'], ['POST', '/v1/dashboard/verify'], ['GET', '/v1/admin/policies']]) {
      const r = await fetch(`${url}${path}`, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{"evidence":"AAAA"}' } : {}) });
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.equal(((await r.json()) as { type: string }).type, 'https://coffer.dev/problems/admin-unauthenticated');
    }
    // A cookie that names no session, and a bad Bearer token next to a good session, are both 401.
    assert.equal((await fetch(`${url}/v1/dashboard/overview`, { headers: { cookie: `coffer_ui=${'A'.repeat(43)}` } })).status, 401);
    const s = await login(admin);
    assert.equal((await fetch(`${url}/v1/dashboard/overview`, { headers: { cookie: s.cookie, authorization: 'Bearer x.y.z' } })).status, 401);
  });

  test('without --kubeconfig the cluster view and the overview say what would feed them', async () => {
    const c = (await (await fetch(`${url}/v1/dashboard/cluster`, { headers: bearer(viewer) })).json()) as { available: boolean; note: string; panels: unknown[] };
    assert.equal(c.available, false);
    assert.match(c.note, /--kubeconfig/);
    assert.equal(c.panels.length, 4);
    const o = (await (await fetch(`${url}/v1/dashboard/overview`, { headers: bearer(viewer) })).json()) as { nodes: { available: boolean; note: string } };
    assert.deepEqual([o.nodes.available, /node-trust controller/.test(o.nodes.note)], [false, true]);
  });

  test('a viewer token reads and never writes (API and KBS admin)', async () => {
    assert.equal((await fetch(`${url}/v1/dashboard/overview`, { headers: bearer(viewer) })).status, 200);
    assert.equal((await fetch(`${url}/v1/admin/policies`, { headers: bearer(viewer) })).status, 200);
    assert.equal((await fetch(`${url}/v1/admin/audit`, { headers: bearer(viewer) })).status, 200);
    const put = await fetch(`${url}/v1/admin/policies/v`, { method: 'PUT', headers: bearer(viewer, { 'content-type': 'text/plain' }), body: 'rules: []' });
    assert.equal(put.status, 403);
    assert.equal(((await put.json()) as { type: string }).type, 'https://coffer.dev/problems/admin-forbidden');
    assert.equal((await fetch(`${url}/v1/admin/policies/default`, { method: 'DELETE', headers: bearer(viewer) })).status, 403);
    assert.equal((await fetch(`${url}/v1/admin/keys/rotate`, { method: 'POST', headers: bearer(viewer) })).status, 403);
    assert.equal((await fetch(`${url}/v1/admin/collateral/refresh`, { method: 'POST', headers: bearer(viewer) })).status, 403);
    const kbs = await cli(['kbs-client', '--url', url, '--admin-token', viewer, 'set-resource-policy', '--allow-all']);
    assert.notEqual(kbs.code, 0, 'the KBS admin API refuses a viewer token');
    assert.equal((await fetch(`${url}/v1/admin/policies/v`, { headers: bearer(admin) })).status, 404, 'nothing was written');
    // The same through a viewer session, CSRF header and all.
    const s = await login(viewer);
    assert.equal(s.role, 'viewer');
    const viaSession = await fetch(`${url}/v1/admin/policies/v`, { method: 'PUT', headers: { cookie: s.cookie, 'x-coffer-csrf': s.csrf, 'content-type': 'text/plain' }, body: 'rules: []' });
    assert.equal(viaSession.status, 403);
  });

  test('a token with an unknown role is refused outright', async () => {
    const key = createPrivateKey(readFileSync(join(dir, 'keys/admin.key')));
    const now = Math.floor(Date.now() / 1000);
    const root = await new SignJWT({ sub: 'x', 'coffer.role': 'root' }).setProtectedHeader({ alg: 'EdDSA' }).setIssuedAt(now).setExpirationTime(now + 600).sign(key);
    assert.equal((await fetch(`${url}/v1/admin/policies`, { headers: bearer(root) })).status, 401);
    assert.equal((await login(root)).status, 401);
  });

  test('the session cookie is HttpOnly and SameSite=Strict (no Secure over plain HTTP); logout ends it', async () => {
    const s = await login(admin);
    assert.equal(s.status, 200);
    assert.match(s.setCookie, /^coffer_ui=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    assert.equal((await fetch(`${url}/v1/dashboard/overview`, { headers: { cookie: s.cookie } })).status, 200);
    // Logout is a write: without the CSRF header it is refused, with it the session is gone.
    assert.equal((await fetch(`${url}/ui/session`, { method: 'DELETE', headers: { cookie: s.cookie } })).status, 403);
    const out = await fetch(`${url}/ui/session`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-coffer-csrf': s.csrf } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^coffer_ui=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict/);
    assert.equal((await fetch(`${url}/v1/dashboard/overview`, { headers: { cookie: s.cookie } })).status, 401);
  });

  test('CSRF: a write through a session needs its token and the same origin; a cross-site POST is refused', async () => {
    const s = await login(admin);
    const put = (headers: Record<string, string>) => fetch(`${url}/v1/admin/policies/csrf`, { method: 'PUT', headers: { cookie: s.cookie, 'content-type': 'text/plain', ...headers }, body: 'rules: []' });
    const none = await put({});
    assert.equal(none.status, 403);
    assert.equal(((await none.json()) as { type: string }).type, 'https://coffer.dev/problems/csrf-failed');
    assert.equal((await put({ 'x-coffer-csrf': 'A'.repeat(43) })).status, 403);
    assert.equal((await put({ 'x-coffer-csrf': s.csrf, origin: 'https://evil.example' })).status, 403);
    // What a cross-site form would send: the cookie (were SameSite not there) and no CSRF header.
    const form = await fetch(`${url}/v1/dashboard/verify`, { method: 'POST', headers: { cookie: s.cookie, origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{"evidence":"AAAA"}' });
    assert.equal(form.status, 403);
    assert.equal((await fetch(`${url}/v1/admin/policies/csrf`, { headers: bearer(admin) })).status, 404, 'nothing was written');
    assert.equal((await put({ 'x-coffer-csrf': s.csrf, origin: url })).status, 201);
    // Signing in from another site, or with a form body, is refused too (login CSRF).
    assert.equal((await login(admin, { origin: 'https://evil.example' })).status, 403);
    const formLogin = await fetch(`${url}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${admin}` });
    assert.ok(formLogin.status === 415 || formLogin.status === 400, String(formLogin.status));
  });

  test('bounded: limit, before, hours and evidence sizes', async () => {
    const h = bearer(viewer);
    for (const q of ['limit=0', 'limit=501', 'limit=abc', 'limit=1e3', 'before=-1']) assert.equal((await fetch(`${url}/v1/dashboard/audit?${q}`, { headers: h })).status, 400, q);
    assert.equal((await fetch(`${url}/v1/dashboard/audit?limit=500`, { headers: h })).status, 200);
    assert.equal((await fetch(`${url}/v1/dashboard/overview?hours=100000`, { headers: h })).status, 400);
    assert.equal((await fetch(`${url}/v1/dashboard/kbs?limit=9999`, { headers: h })).status, 400);
    const big = await fetch(`${url}/v1/dashboard/verify`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ evidence: 'A'.repeat(1024 * 1024 + 4) }) });
    assert.equal(big.status, 400);
    // Over the route's 8 MB body limit: refused from the Content-Length alone, before any byte of the body is read
    // (headers only; sending the body would race the server's early answer and close).
    const huge = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/dashboard/verify`, { method: 'POST', headers: { ...h, 'content-type': 'application/json', 'content-length': String(9 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(huge, 413);
    const junk = await fetch(`${url}/v1/dashboard/verify`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ evidence: Buffer.alloc(100, 1).toString('base64') }) });
    assert.equal(junk.status, 200);
    const r = (await junk.json()) as { verified: boolean; checks: { ok: boolean; code?: string }[] };
    assert.equal(r.verified, false);
    assert.ok(r.checks.some((c) => c.ok === false && c.code), 'a failed check with its code');
  });

  test('nothing secret in the read API or the live stream: resource values, tokens, KBS session ids', async () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, SECRET);
    assert.equal((await cli(['kbs-client', '--url', url, '--admin-token', admin, 'set-resource', '--path', 'app/key/one', '--resource-file', secretFile])).code, 0);
    // A live stream opened before the next attestation.
    const ac = new AbortController();
    const es = await fetch(`${url}/v1/dashboard/events`, { headers: bearer(viewer), signal: ac.signal });
    assert.equal(es.status, 200);
    assert.match(es.headers.get('content-type') ?? '', /^text\/event-stream/);
    const att = await cli(['kbs-client', '--url', url, 'attest', '--sample-key', join(dir, 'keys/sample-dev.jwk')]);
    assert.equal(att.code, 0, att.err);
    const token = att.out.trim();
    const get = await cli(['kbs-client', '--url', url, 'get-resource', '--path', 'app/key/one', '--sample-key', join(dir, 'keys/sample-dev.jwk')]);
    assert.notEqual(get.code, 0);
    let streamed = '';
    const reader = es.body!.getReader();
    const deadline = Date.now() + 10_000;
    while (!/resource\.get/.test(streamed) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      streamed += Buffer.from(value).toString('utf8');
    }
    ac.abort();
    assert.match(streamed, /event: audit\ndata: \{.*"action":"kbs\.attest"/);
    assert.match(streamed, /"action":"resource\.get".*"result":"denied"/);
    const all = streamed + JSON.stringify(await (await fetch(`${url}/v1/dashboard/kbs`, { headers: bearer(viewer) })).json()) +
      JSON.stringify(await (await fetch(`${url}/v1/dashboard/audit?limit=500`, { headers: bearer(viewer) })).json()) +
      JSON.stringify(await (await fetch(`${url}/v1/dashboard/overview`, { headers: bearer(viewer) })).json()) +
      JSON.stringify(await (await fetch(`${url}/v1/admin/audit?limit=1000`, { headers: bearer(viewer) })).json());
    assert.ok(all.includes('app/key/one'), 'the path is listed');
    assert.ok(!all.includes(SECRET) && !all.includes(Buffer.from(SECRET).toString('base64')), 'the value is not');
    assert.ok(!all.includes(token) && !all.includes(admin) && !all.includes(viewer), 'no token');
    // KBS session ids are bearer cookies while they live: only an 8-hex fingerprint is shown.
    assert.ok(!/session:[0-9a-f]{32}/.test(all));
    assert.match(all, /session:[0-9a-f]{8}"/);
  });
});

describe('dashboard sessions (unit)', () => {
  test('Secure cookie behind TLS; the session ends with the token that opened it', async () => {
    const keys = await adminKeys();
    const auth = await AdminAuth.fromPublicKeys([keys.publicJwk]);
    const t = tempStore();
    try {
      let now = Date.now();
      const sessions = new DashboardSessions({ store: t.store, admin: auth, clock: () => now, secureCookies: true });
      const headers: Record<string, string> = {};
      const reply = { header: (k: string, v: string) => void (headers[k] = v) } as unknown as Parameters<DashboardSessions['login']>[1];
      const view = await sessions.login(await keys.token({ expSeconds: 60 }), reply);
      assert.match(headers['set-cookie'], /; HttpOnly; SameSite=Strict; Secure$/);
      assert.match(headers['set-cookie'], /Max-Age=(59|60);/);
      const id = headers['set-cookie'].split(';')[0].split('=')[1];
      const req = (extra: Record<string, string> = {}) => ({ method: 'GET', headers: { cookie: `coffer_ui=${id}`, host: 'h', ...extra } }) as unknown as Parameters<DashboardSessions['current']>[0];
      assert.equal((await sessions.current(req()))?.csrf, view.csrf);
      now += 61_000;
      assert.equal(await sessions.current(req()), undefined, 'expired with the token');
    } finally {
      await t.cleanup();
    }
  });

  test('records are sanitized; advisories link to the vendor bulletins', () => {
    const r = sanitizeRecord({ id: 1, at: 0, actor: 'session:0123456789abcdef0123456789abcdef', action: 'kbs.attest', target: 'sample', result: 'affirming', details: { evidenceDigest: 'ab', token: 'eyJ...', value: 'x' } });
    assert.match(r.actor, /^session:[0-9a-f]{8}$/);
    assert.deepEqual(r.details, { evidenceDigest: 'ab' });
    assert.equal(advisoryUrl('INTEL-SA-00615'), 'https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-00615.html');
    assert.equal(advisoryUrl('AMD-SB-3019'), 'https://www.amd.com/en/resources/product-security/bulletin/amd-sb-3019.html');
    assert.equal(advisoryUrl('CVE-2024-1'), null);
  });
});
