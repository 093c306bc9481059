import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenIssuer } from '../../src/attestation/tokens.js';
import { tempStore } from '../support/service.js';

test('replicas on one store: a token from a replica that rotated verifies at the other; scheduled rotation by age', async () => {
  const ts = tempStore();
  try {
    const t0 = Date.now();
    const a = new TokenIssuer(ts.store, { issuer: 'iss' });
    const b = new TokenIssuer(ts.store, { issuer: 'iss' });
    await a.init(t0);
    await b.init(t0);
    assert.equal(a.activeKid, b.activeKid);
    await a.rotate(t0 + 1000);
    const tok = await a.sign({ x: 1 }, t0 + 1000);
    assert.equal((await b.verify(tok, t0 + 2000)).x, 1); // b reloads on the unknown kid
    assert.equal(await a.rotateIfOlderThan(3_600_000, t0 + 2000), false);
    assert.equal(await a.rotateIfOlderThan(3_600_000, t0 + 3_601_001), true);
    await assert.rejects(b.verify(tok, t0 + 3_601_001 + 400_000)); // expired, and its key is no longer published
    await assert.rejects(b.verify(`${tok.slice(0, -4)}AAAA`, t0 + 2000));
  } finally {
    await ts.cleanup();
  }
});

test('cached collateral reaches the verifier through collateralOptions (upstream never contacted at verify time)', async () => {
  const { buildAttestationApp } = await import('../../src/attestation/index.js');
  const { VerifierRegistry } = await import('../../src/tee/registry.js');
  const ts = tempStore();
  let seen: Record<string, unknown> | undefined;
  // A test-defined verifier standing in for a real TEE: records the options it was called with.
  const spy = {
    tee: 'sgx' as const,
    detect: () => false,
    async verify(input: { evidence: Uint8Array }, opts: Record<string, unknown>) {
      seen = opts;
      return { tee: 'sgx' as const, measurements: {}, svns: {}, debug: false, reportData: Buffer.from(input.evidence).toString('hex'), platform: {}, advisories: [], warnings: [], raw: {} };
    },
  };
  try {
    await ts.store.putCollateral({ key: 'pcs/tcb/x', body: Buffer.from('TCB'), contentType: 'application/json', source: 'test', fetchedAt: 1, nextUpdate: null });
    const { app } = await buildAttestationApp({
      store: ts.store, adminKeys: [], registry: new VerifierRegistry([spy]),
      collateral: { upstreams: { pcs: 'http://127.0.0.1:1' }, items: [{ key: 'pcs/tcb/x', tee: 'sgx', upstream: 'pcs', path: 'x' }] },
      collateralOptions: (tee, entries) => ({ dcap: { tcbInfo: entries['pcs/tcb/x'], tee } }),
    });
    const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json();
    const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sgx', evidence: nonce, nonce } });
    assert.equal(r.statusCode, 200, r.body);
    const dcap = seen?.dcap as { tcbInfo: Uint8Array; tee: string };
    assert.equal(Buffer.from(dcap.tcbInfo).toString(), 'TCB');
    assert.equal(dcap.tee, 'sgx');
    await app.close();
  } finally {
    await ts.cleanup();
  }
});

test('tokens with unknown kids reload the key store at most once per window; a real rotation is still picked up', async () => {
  const ts = tempStore();
  try {
    let lists = 0;
    const counting = new Proxy(ts.store, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv);
        if (prop === 'listSigningKeys') return (...a: unknown[]) => (lists++, (v as (...x: unknown[]) => unknown).apply(target, a));
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const t0 = Date.now();
    const a = new TokenIssuer(ts.store, { issuer: 'iss' });
    const b = new TokenIssuer(counting, { issuer: 'iss', unknownKidReloadMs: 5_000 });
    await a.init(t0);
    await b.init(t0);
    const base = lists;
    // An attacker's flood: well-formed JWTs naming random kids.
    const forged = (i: number) => `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: `kid-${i}` })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.AAAA`;
    for (let i = 0; i < 200; i++) await assert.rejects(b.verify(forged(i), t0 + 10 + i));
    assert.equal(lists - base, 1, 'one reload for 200 unknown kids inside one window');
    // After the window, one more reload; the rotation that happened meanwhile is found then.
    await a.rotate(t0 + 1000);
    const tok = await a.sign({ x: 2 }, t0 + 1000);
    await assert.rejects(b.verify(tok, t0 + 1500)); // still inside the window: the new kid is not known yet
    assert.equal((await b.verify(tok, t0 + 5_100)).x, 2);
    assert.equal(lists - base, 2);
    // Known kids never touch the store.
    for (let i = 0; i < 50; i++) await b.verify(tok, t0 + 5_200);
    assert.equal(lists - base, 2);
  } finally {
    await ts.cleanup();
  }
});

test('token payload: exactly JSON.stringify({ ...claims, iss, iat, exp }), also when the claims carry iss/iat/exp or are empty', async () => {
  const ts = tempStore();
  try {
    const now = 1_700_000_123_456;
    const t = new TokenIssuer(ts.store, { issuer: 'https://a"b\\c/\u2028é', ttlSeconds: 60 });
    await t.init(now);
    const iat = Math.floor(now / 1000);
    const cases: Record<string, unknown>[] = [
      {},
      { a: 1, s: 'x"y\u0000', nested: { arr: [1, 'two', null, { d: true }] }, u: undefined },
      { iss: 'forged', z: 1 },
      { iat: 1, exp: 2 },
      { submods: { sgx: { 'ear.status': 'affirming' } }, cnf: { jwk: { kty: 'EC' } } },
      // Multi-byte UTF-8 (2, 3, 4 bytes), a lone surrogate (escaped by JSON.stringify), right before the closing '}'.
      { runtime_data_claims: { node: 'nœud-€-😀', odd: '\ud800' }, last: 'é' },
    ];
    for (const c of cases) {
      const tok = await t.sign(c, now);
      const payload = Buffer.from(tok.split('.')[1], 'base64url').toString('utf8');
      assert.equal(payload, JSON.stringify({ ...c, iss: t.issuer, iat, exp: iat + 60 }));
      assert.equal((await t.verify(tok, now)).iss, t.issuer);
    }
    t.setIssuer('https://other');
    const p = JSON.parse(Buffer.from((await t.sign({ k: 1 }, now)).split('.')[1], 'base64url').toString('utf8'));
    assert.equal(p.iss, 'https://other');
  } finally {
    await ts.cleanup();
  }
});
