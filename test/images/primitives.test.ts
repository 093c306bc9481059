import { test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { Glob } from '../../src/images/glob.js';
import { SafeRegExp } from '../../src/images/safe-regexp.js';
import { parseImageRef, pinnedRef, repositoryOf } from '../../src/images/reference.js';
import { VerificationCache } from '../../src/images/cache.js';
import { checkImagePolicy, compileImagePolicy } from '../../src/images/policy.js';
import { parseWwwAuthenticate } from '../../src/images/registry.js';
import { ImageError } from '../../src/images/errors.js';
import { generateSigningKey } from '../support/cosign.js';

test('image references normalise like containerd (docker.io, library/, latest)', () => {
  assert.deepEqual(parseImageRef('nginx'), { registry: 'docker.io', path: 'library/nginx', tag: 'latest' });
  assert.deepEqual(parseImageRef('team/app:1.2'), { registry: 'docker.io', path: 'team/app', tag: '1.2' });
  assert.deepEqual(parseImageRef('127.0.0.1:5000/a/b:v1'), { registry: '127.0.0.1:5000', path: 'a/b', tag: 'v1' });
  const d = `sha256:${'a'.repeat(64)}`;
  const r = parseImageRef(`ghcr.io/o/app:1@${d}`);
  assert.deepEqual(r, { registry: 'ghcr.io', path: 'o/app', tag: '1', digest: d });
  assert.equal(pinnedRef(r, d), `ghcr.io/o/app@${d}`);
  assert.equal(repositoryOf(parseImageRef('localhost/x')), 'localhost/x');
  for (const bad of ['', 'r.example/Upper', 'a@sha256:short', `a@sha512:${'a'.repeat(128)}`, 'a:b:c', 'a//b', 'x'.repeat(600)]) {
    assert.throws(() => parseImageRef(bad), (e: unknown) => e instanceof ImageError && e.code === 'REF_INVALID', bad);
  }
});

test('repository globs: * within a segment, ** across; linear on hostile input', () => {
  const g = new Glob('registry.example/team/*');
  assert.ok(g.matches('registry.example/team/web'));
  assert.ok(!g.matches('registry.example/team/web/sub'));
  assert.ok(!g.matches('registry.example/teamx/web'));
  assert.ok(new Glob('registry.example/**').matches('registry.example/a/b/c'));
  assert.ok(new Glob('*.example/app').matches('r.example/app'));
  assert.ok(!new Glob('*.example/app').matches('a/b.example/app'));
  assert.ok(new Glob('exact/repo').matches('exact/repo'));
  assert.ok(!new Glob('exact/repo').matches('exact/repo2'));
  // The classic backtracking killer: many stars against a long near-miss. Must answer, and answer false.
  const evil = new Glob(`${'*a'.repeat(60)}b`);
  assert.equal(evil.matches('a'.repeat(400)), false);
  assert.throws(() => new Glob('x'.repeat(300)), ImageError);
});

test('identity regexps: whole-match, bounded, pathological shapes refused', () => {
  const r = new SafeRegExp('https://github\\.com/example/.*');
  assert.ok(r.test('https://github.com/example/repo/.github/workflows/release.yml@refs/heads/main'));
  assert.ok(!r.test('evil https://github.com/example/x'), 'anchored at the start');
  assert.ok(new SafeRegExp('dev@example\\.com|ops@example\\.com').test('ops@example.com'));
  assert.ok(!new SafeRegExp('dev@example\\.com').test('dev@example.com.evil'), 'anchored at the end');
  assert.ok(new SafeRegExp('(?:a|b)c+').test('acc'));
  assert.ok(!new SafeRegExp('.*').test('x'.repeat(2000)), 'subject length cap');
  for (const bad of ['(a+)+', '(a*)*b', '(a|a)*', '(x+x+)+y', '(a)\\1', '(?=a)a', '(?<!a)b', 'x'.repeat(300), '(a', 'a)', '[a', 'a{1000}']) {
    assert.throws(() => new SafeRegExp(bad), (e: unknown) => e instanceof ImageError && e.code === 'POLICY_INVALID', bad);
  }
});

test('image policy checking: shapes, keys and patterns are validated at load time', () => {
  const k = generateSigningKey('ecdsa').publicPem;
  assert.deepEqual(checkImagePolicy({ signers: [{ name: 'a', publicKey: k }] }, 'p'), { signers: [{ name: 'a', publicKey: k }] });
  const bad = (v: unknown, re: RegExp) => assert.throws(() => checkImagePolicy(v, 'p'), (e: unknown) => e instanceof ImageError && re.test(e.message));
  bad({ signers: [] }, /1\.\.16 signers/);
  bad({ signers: [{ name: 'a' }] }, /exactly one of publicKey or keyless/);
  bad({ signers: [{ name: 'a', publicKey: 'nope' }] }, /not a PEM public key/);
  bad({ signers: [{ name: 'a', publicKey: generateSigningKey('ecdsa').publicPem }, { name: 'a', publicKey: k }] }, /used twice/);
  bad({ signers: [{ name: 'a', keyless: { issuer: 'x' } }] }, /subject or subjectRegExp/);
  bad({ signers: [{ name: 'a', keyless: { issuer: 'x', subjectRegExp: '(a+)+' } }] }, /nested repetition/);
  bad({ signers: [{ name: 'a', publicKey: k }], platform: 'linux' }, /os\/arch/);
  bad({ signers: [{ name: 'a', publicKey: k }], extra: 1 }, /unknown field "extra"/);
  // P-384 is a valid key but not one cosign's keyed mode pairs with SHA-256: refused rather than guessed.
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  bad({ signers: [{ name: 'a', publicKey: p384 }] }, /not accepted/);
  // Same content → same id (cache key); different content → different id.
  assert.equal(compileImagePolicy({ signers: [{ name: 'a', publicKey: k }] }).id, compileImagePolicy({ signers: [{ name: 'a', publicKey: k }] }).id);
  assert.notEqual(compileImagePolicy({ signers: [{ name: 'a', publicKey: k }] }).id, compileImagePolicy({ signers: [{ name: 'b', publicKey: k }] }).id);
});

test('WWW-Authenticate Bearer challenges parse (quoted, unquoted, escaped)', () => {
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseWwwAuthenticate('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } });
  assert.deepEqual(parseWwwAuthenticate('Bearer realm=plain, service="s\\"q"')?.params, { realm: 'plain', service: 's"q' });
  assert.equal(parseWwwAuthenticate('Negotiate abc'), undefined);
});

test('verification cache: TTL, LRU bound, in-flight sharing, failures not kept', async () => {
  let now = 0;
  const c = new VerificationCache<number>({ maxEntries: 2, ttlMs: 100, now: () => now });
  let runs = 0;
  const slow = () => new Promise<number>((r) => setTimeout(() => r(++runs), 10));
  const all = await Promise.all(Array.from({ length: 50 }, () => c.get('a', slow)));
  assert.deepEqual(new Set(all), new Set([1]), '50 concurrent lookups share one run');
  assert.equal(runs, 1);
  assert.equal(await c.get('a', slow), 1, 'cached');
  now = 150;
  assert.equal(await c.get('a', slow), 2, 'expired → recomputed');
  await c.get('b', slow);
  await c.get('a', slow); // a most recent
  await c.get('c', slow); // evicts b
  assert.equal(c.size, 2);
  assert.equal(c.peek('b'), undefined);
  assert.ok(c.peek('a') !== undefined);
  await assert.rejects(c.get('f', () => Promise.reject(new Error('down'))));
  let ok = 0;
  assert.equal(await c.get('f', async () => ++ok), 1, 'a failure is not cached');
});

test('a pod naming more distinct images than the cap is denied without contacting any registry', async () => {
  const { verifyPodImages, MAX_POD_IMAGES } = await import('../../src/k8s/admission/images.js');
  const { ImageVerifier } = await import('../../src/images/verifier.js');
  let calls = 0;
  const source = { manifest: async () => (calls++, null), blob: async () => Buffer.alloc(0), referrers: async () => null };
  const v = new ImageVerifier({ source });
  const spec = { signers: [{ name: 'k', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString() }] };
  const policies = [{ apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'p' }, spec: { namespaceSelector: {}, isolation: 'sandbox', enforce: 'mutate', sizing: 'none', autonomy: false, images: spec } }] as never;
  const containers = Array.from({ length: MAX_POD_IMAGES + 1 }, (_, i) => ({ name: `c${i}`, image: `r.example/app${i}:v1` }));
  const out = await verifyPodImages({ spec: { containers } }, {}, policies, v);
  const verdict = out!.get('p')!.get('r.example/app0:v1')!;
  assert.equal(verdict.ok, false);
  assert.equal(!verdict.ok && verdict.code, 'TOO_LARGE');
  assert.equal(calls, 0);
});
