/**
 * The attestation service and the KBS under hostile input, on SQLite and PostgreSQL: documents nested deeper than
 * the bound (400 before parsing; the nonce not consumed), prototype-named keys, bad admin query parameters, and the
 * resource-policy glob matcher's linear bound. Slow-loris bodies are in http-timeouts.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { buildKbsApp } from '../../src/kbs/index.js';
import { decide, globMatch, parseResourcePolicy, pathMatches } from '../../src/kbs/resource-policy.js';
import { jsonDepth, yamlDepth } from '../../src/tee/common/nesting.js';
import { Kek, PostgresStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import type { AttestationService } from '../../src/attestation/service.js';
import { adminKeys, tempStore, type AdminKeys } from '../support/service.js';
import { pgSkip, startPostgres, type PgHandle } from '../support/postgres.js';

/** The KBS answers its client errors the way Trustee does: 401 with a typed variant (never a 500). */
function kbsRejected(r: { statusCode: number; body: string }, variant: string, what = ''): void {
  assert.equal(r.statusCode, 401, `${what} ${r.body}`);
  assert.equal(JSON.parse(r.body).type, `https://github.com/confidential-containers/kbs/errors/${variant}`, `${what} ${r.body}`);
}

const deepJson = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const b64u = (s: string) => Buffer.from(s).toString('base64url');

test('depth scanners: JSON counts brackets outside strings; YAML over-counts, never under-counts', () => {
  assert.equal(jsonDepth('{"a":"[[[{{{","b":[{"c":"\\"["}]}'), 3);
  assert.equal(jsonDepth(deepJson(1000)), 1000);
  assert.equal(jsonDepth(deepJson(100_000), 64), 65, 'stops early above the bound');
  assert.ok(yamlDepth('tees: [sgx, tdx]\nmeasurements:\n  mrenclave: ["ab"]\n') >= 3);
  assert.ok(yamlDepth('tees: [sgx, tdx]\nmeasurements:\n  mrenclave: ["ab"]\n') <= 4);
  assert.ok(yamlDepth(`${'- '.repeat(500)}x`) >= 500, 'compact block sequences nest on one line');
  assert.ok(yamlDepth(`${'['.repeat(1000)}`) >= 1000);
  assert.ok(yamlDepth('a:\n' + Array.from({ length: 200 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')) > 64);
  assert.equal(yamlDepth("note: \"it's [not] nested\" # [[[[\nb: 'x'\n"), 1);
});

test('resource globs match in linear time: *-*-*-*-*-*-*-*.key against a 61-character path', () => {
  const glob = 'default/key/*-*-*-*-*-*-*-*.key';
  const path = `default/key/${'-'.repeat(49)}`; // 61 characters, no match (the backtracking RegExp took 11.5 s)
  assert.equal(path.length, 61);
  const steps = { n: 0 };
  assert.equal(pathMatches(glob, path, steps), false);
  assert.ok(steps.n < 10 * path.length, `bounded work: ${steps.n} comparisons`);
  const long = { n: 0 };
  assert.equal(globMatch('*-*-*-*-*-*-*-*-*-*-*-*.key', `${'-'.repeat(100_000)}x`, long), false);
  assert.ok(long.n < 40 * 100_000, `linear in the text: ${long.n}`);
  // Correctness of the matcher.
  assert.equal(globMatch('*', ''), true);
  assert.equal(globMatch('a*', 'a'), true);
  assert.equal(globMatch('*a', 'ba'), true);
  assert.equal(globMatch('a*a', 'a'), false, 'prefix and suffix may not overlap');
  assert.equal(globMatch('a*b*c', 'aXbYc'), true);
  assert.equal(globMatch('a*b*c', 'aXcYb'), false);
  assert.equal(globMatch('*-*.key', 'a-b.key'), true);
  assert.equal(globMatch('*-*.key', 'ab.key'), false);
  assert.equal(globMatch('key', 'key'), true);
  assert.equal(globMatch('key', 'keys'), false);
  assert.equal(pathMatches('default/*/x*', 'default/key/xy'), true);
  assert.equal(pathMatches('default/*/x*', 'default/key/yx'), false);
});

test('resource policies: prototype-named measurement keys are refused; token facts are read as own properties', () => {
  for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    const text = `{"rules":[{"resources":["*/*/*"],"measurements":{${JSON.stringify(k)}:["aa"]}}]}`;
    assert.throws(() => parseResourcePolicy(text), /not allowed as a measurement name/, k);
  }
  const policy = parseResourcePolicy('{"rules":[{"resources":["*/*/*"],"measurements":{"launch_digest":["aa"]}}]}');
  const facts = { tee: 'snp', status: 'affirming', measurements: JSON.parse('{"__proto__":{"launch_digest":"aa"}}') as Record<string, string> };
  assert.equal(decide(policy, 'a/b/c', facts).allow, false, 'a measurement inherited through __proto__ is not a measurement');
  assert.equal(decide(policy, 'a/b/c', { ...facts, measurements: { launch_digest: 'AA' } }).allow, true);
  assert.throws(() => parseResourcePolicy(`{"rules":${deepJson(1000)}}`), /nested more than 64 levels deep/);
});

/** The same probes against a store: SQLite always, PostgreSQL when it is installed. */
function probes(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>, skip: string | false) {
  describe(`hostile input to the services (${name})`, { skip }, () => {
    let as: FastifyInstance;
    let kbs: FastifyInstance;
    let service: AttestationService;
    let admin: AdminKeys;
    let auth = '';
    let closeStore = async () => {};

    before(async () => {
      const s = await open();
      closeStore = s.close;
      admin = await adminKeys();
      ({ app: as, service } = await buildAttestationApp({ store: s.store, adminKeys: [admin.publicJwk], dev: true }));
      ({ app: kbs } = await buildKbsApp({ store: s.store, adminKeys: [admin.publicJwk], dev: true }));
      auth = `Bearer ${await admin.token()}`;
    });
    after(async () => {
      await as?.close();
      await kbs?.close();
      await closeStore();
    });

    test('deep JSON and YAML admin documents answer 400 and the service keeps serving', async () => {
      for (const segment of ['policies', 'reference-values']) {
        for (const [ct, body] of [
          ['application/yaml', deepJson(1000)],
          ['application/yaml', `${'- '.repeat(1000)}x\n`],
          ['application/json', deepJson(1000)],
          ['application/json', `{"tees":${deepJson(100_000)}}`],
        ] as const) {
          const r = await as.inject({ method: 'PUT', url: `/v1/admin/${segment}/deep`, headers: { authorization: auth, 'content-type': ct }, payload: body });
          assert.equal(r.statusCode, 400, `${segment} ${ct} ${body.slice(0, 20)} → ${r.statusCode} ${r.body}`);
          assert.match(r.body, /nested more than 64 levels deep/);
        }
      }
      const k = await kbs.inject({ method: 'POST', url: '/kbs/v0/attestation-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: { policy: b64u(deepJson(1000)) } });
      kbsRejected(k, 'ParsePolicyError');
      assert.match(k.body, /nested more than 64 levels deep/);
      const rp = await kbs.inject({ method: 'POST', url: '/kbs/v0/resource-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: { policy: b64u(`{"rules":${deepJson(1000)}}`) } });
      kbsRejected(rp, 'ParsePolicyError');
      const deepBody = await kbs.inject({ method: 'POST', url: '/kbs/v0/resource-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: `{"policy":${deepJson(5000)}}` });
      kbsRejected(deepBody, 'SerdeError');
      assert.equal((await as.inject({ url: '/healthz' })).statusCode, 200);
    });

    test('/v1/attest with deep runtimeData answers 400 and does not consume the nonce', async () => {
      const { nonce } = (await as.inject({ method: 'POST', url: '/v1/challenge' })).json() as { nonce: string };
      const payload = `{"tee":"sample","evidence":"e30","nonce":${JSON.stringify(nonce)},"runtimeData":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
      const r = await as.inject({ method: 'POST', url: '/v1/attest', headers: { 'content-type': 'application/json' }, payload });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.headers['content-type'] as string, /problem\+json/);
      await service.nonces.consume(nonce, Date.now()); // throws 'nonce-replayed' had the request burned it
    });

    test('/kbs/v0/attest with deep primary_evidence is a SerdeError (a Trustee 401) and keeps the session usable', async () => {
      const a = await kbs.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
      const cookie = String(a.headers['set-cookie']).split(';')[0];
      const { nonce } = a.json() as { nonce: string };
      const payload = `{"runtime-data":{"nonce":${JSON.stringify(nonce)},"tee-pubkey":{"kty":"EC"}},"tee-evidence":{"primary_evidence":${deepJson(10_000)}}}`;
      const r = await kbs.inject({ method: 'POST', url: '/kbs/v0/attest', headers: { 'content-type': 'application/json', cookie }, payload });
      kbsRejected(r, 'SerdeError');
      assert.match(r.body, /nested more than 64 levels deep/);
      // The session still answers (not expired, not consumed): a well-formed but wrong attestation is judged on its merits.
      const again = await kbs.inject({ method: 'POST', url: '/kbs/v0/attest', headers: { 'content-type': 'application/json', cookie }, payload: { 'runtime-data': { nonce: 'other', 'tee-pubkey': { kty: 'EC' } }, 'tee-evidence': { primary_evidence: 'x' } } });
      assert.notEqual(again.json().type, 'https://github.com/confidential-containers/kbs/errors/SessionExpired', again.body);
      assert.ok(again.statusCode < 500, again.body);
    });

    test('prototype-named keys in admin documents are refused, and fetches never 500', async () => {
      for (const k of ['constructor', 'toString', '__proto__']) {
        const rp = await kbs.inject({ method: 'POST', url: '/kbs/v0/resource-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: { policy: b64u(`{"rules":[{"resources":["*/*/*"],"measurements":{${JSON.stringify(k)}:["aa"]}}]}`) } });
        kbsRejected(rp, 'ParsePolicyError', k);
        const rv = await as.inject({ method: 'PUT', url: '/v1/admin/reference-values/proto', headers: { authorization: auth, 'content-type': 'application/yaml' }, payload: `measurements:\n  ${k}: ["aa"]\n` });
        assert.equal(rv.statusCode, 400, `${k}: ${rv.body}`);
        const body = await as.inject({ method: 'PUT', url: '/v1/admin/reference-values/proto', headers: { authorization: auth, 'content-type': 'application/json' }, payload: `{"measurements":{${JSON.stringify(k)}:["aa"]}}` });
        assert.equal(body.statusCode, 400, `${k}: ${body.body}`);
      }
      const fetch = await kbs.inject({ url: '/kbs/v0/resource/a/b/c', headers: { authorization: 'Bearer x.y.z' } });
      assert.ok(fetch.statusCode < 500, fetch.body);
    });

    test('admin query parameters: 400 naming the parameter, limit capped', async () => {
      await as.inject({ method: 'PUT', url: '/v1/admin/policies/q', headers: { authorization: auth, 'content-type': 'application/yaml' }, payload: 'rules: []\n' });
      for (const q of ['version=abc', 'version=-1', 'version=0', 'version=99999999999999999999', 'version=3000000000', 'version=1&version=2', 'version=1.5', 'version=']) {
        const r = await as.inject({ url: `/v1/admin/policies/q?${q}`, headers: { authorization: auth } });
        assert.equal(r.statusCode, 400, `${q} → ${r.statusCode} ${r.body}`);
        assert.match(r.json().detail, /query parameter 'version'/);
      }
      assert.equal((await as.inject({ url: '/v1/admin/policies/q?version=1', headers: { authorization: auth } })).statusCode, 200);
      assert.equal((await as.inject({ url: '/v1/admin/policies/q?version=2147483647', headers: { authorization: auth } })).statusCode, 404);
      for (const q of ['limit=abc', 'limit=-1', 'limit=0', 'limit=1&limit=2', 'limit=1e3', 'after=-5', 'after=abc', 'after=99999999999999999999', 'action=a&action=b']) {
        const r = await as.inject({ url: `/v1/admin/audit?${q}`, headers: { authorization: auth } });
        assert.equal(r.statusCode, 400, `${q} → ${r.statusCode} ${r.body}`);
        assert.match(r.json().detail, /query parameter '(limit|after|action)'/);
      }
      for (let i = 0; i < 3; i++) await service.store.appendAudit({ at: Date.now(), actor: 't', action: 'probe', target: 'x', result: 'ok' });
      const capped = await as.inject({ url: '/v1/admin/audit?limit=1000000&action=probe', headers: { authorization: auth } });
      assert.equal(capped.statusCode, 200, capped.body);
      assert.equal((capped.json() as unknown[]).length, 3);
      const one = await as.inject({ url: '/v1/admin/audit?limit=1&after=0&action=probe', headers: { authorization: auth } });
      assert.equal((one.json() as unknown[]).length, 1);
    });

    test('an empty policy document is refused (it would replace a policy with no rules)', async () => {
      for (const payload of ['', '  \n']) {
        const r = await as.inject({ method: 'PUT', url: '/v1/admin/policies/empty', headers: { authorization: auth, 'content-type': 'application/yaml' }, payload });
        assert.equal(r.statusCode, 400, r.body);
      }
      const k = await kbs.inject({ method: 'POST', url: '/kbs/v0/attestation-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: { policy_id: 'empty', policy: b64u('\n') } });
      kbsRejected(k, 'ParsePolicyError');
      assert.equal(await service.store.getDocument('policy', 'empty'), undefined);
    });

    test('an invalid KBS attestation policy id is refused, never written as "default"', async () => {
      const r = await kbs.inject({ method: 'POST', url: '/kbs/v0/attestation-policy', headers: { authorization: auth, 'content-type': 'application/json' }, payload: { policy_id: 'bad id!', policy: b64u('rules: []\n') } });
      kbsRejected(r, 'ParsePolicyError');
      assert.match(JSON.parse(r.body).detail, /policy_id "bad id!" is not a valid id/);
      assert.equal(await service.store.getDocument('policy', 'default'), undefined);
    });
  });
}

probes('SQLite', async () => {
  const ts = tempStore();
  return { store: ts.store, close: ts.cleanup };
}, false);

let pg: PgHandle | undefined;
probes('PostgreSQL', async () => {
  pg = await startPostgres();
  const store = await PostgresStore.open({ connectionString: pg.url, kek: Kek.fromBytes(Buffer.alloc(32, 5)) });
  return { store, close: async () => { await store.close(); pg?.stop(); } };
}, pgSkip);
