import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { buildKbsApp } from '../../src/kbs/index.js';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { checkTeePublicKey, isOnCurve } from '../../src/tee/common/tee-pubkey.js';
import { encryptResource } from '../../src/kbs/jwe.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { tempStore } from '../support/service.js';

const ERR = 'https://github.com/confidential-containers/kbs/errors/';
const b64u = (b: Uint8Array | number[]) => Buffer.from(b).toString('base64url');
const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });

/** The hostile keys of issue 11: each must be refused before anything is encrypted to it. */
function hostileKeys(): [string, { kty: string } & Record<string, string>, string][] {
  const good = rsa(2048);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const yBad = Buffer.from(ec.y!, 'base64url');
  yBad[31] ^= 1;
  const p256 = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');
  return [
    ['e = 1', { kty: 'RSA', alg: 'RSA-OAEP-256', n: good.n!, e: 'AQ' }, 'TEE_PUBKEY_WEAK'],
    ['e = 3', { kty: 'RSA', alg: 'RSA-OAEP-256', n: good.n!, e: 'Aw' }, 'TEE_PUBKEY_WEAK'],
    ['16-bit modulus', { kty: 'RSA', alg: 'RSA-OAEP-256', n: b64u([0xc3, 0x5f]), e: 'AQAB' }, 'TEE_PUBKEY_WEAK'],
    ['512-bit modulus', { kty: 'RSA', alg: 'RSA-OAEP-256', n: rsa(512).n!, e: 'AQAB' }, 'TEE_PUBKEY_WEAK'],
    ['2047-bit modulus (leading zero byte padded)', { kty: 'RSA', alg: 'RSA-OAEP-256', n: b64u(Buffer.concat([Buffer.from([0]), Buffer.from(good.n!, 'base64url')]).subarray(0, 257).map((x, i) => (i === 1 ? x & 0x7f : x))), e: 'AQAB' }, 'TEE_PUBKEY_WEAK'],
    ['RSA1_5', { kty: 'RSA', alg: 'RSA1_5', n: good.n!, e: 'AQAB' }, 'TEE_PUBKEY_UNSUPPORTED'],
    ['off-curve P-256 point', { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: ec.x!, y: b64u(yBad) }, 'TEE_PUBKEY_INVALID'],
    ['coordinate = p (outside the field)', { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: b64u(p256), y: ec.y! }, 'TEE_PUBKEY_INVALID'],
    ['all-zero point', { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: b64u(Buffer.alloc(32)), y: b64u(Buffer.alloc(32)) }, 'TEE_PUBKEY_INVALID'],
    ['short coordinates', { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: ec.x!.slice(0, 20), y: ec.y! }, 'TEE_PUBKEY_INVALID'],
    ['secp256k1', { kty: 'EC', crv: 'secp256k1', alg: 'ECDH-ES+A256KW', x: ec.x!, y: ec.y! }, 'TEE_PUBKEY_UNSUPPORTED'],
  ];
}

test('TEE key checks: RSA >= 2048 bits with e = 65537, EC on P-256/P-384/P-521 and on the curve', () => {
  for (const [what, k, code] of hostileKeys()) {
    assert.throws(() => checkTeePublicKey(k), { code }, what);
    assert.throws(() => encryptResource(k, Buffer.from('secret')), { variant: 'JweError' }, what);
  }
  const g = rsa(2048);
  checkTeePublicKey({ kty: 'RSA', alg: 'RSA-OAEP-256', n: g.n!, e: g.e! });
  for (const crv of ['P-256', 'P-384', 'P-521'] as const) {
    const name = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[crv];
    const j = generateKeyPairSync('ec', { namedCurve: name }).publicKey.export({ format: 'jwk' });
    checkTeePublicKey({ kty: 'EC', crv, alg: 'ECDH-ES+A256KW', x: j.x!, y: j.y! });
    assert.equal(isOnCurve(crv, Buffer.from(j.x!, 'base64url'), Buffer.from(j.y!, 'base64url')), true);
  }
  // /v1 cnf keys may omit alg; strength rules still hold.
  checkTeePublicKey({ kty: 'RSA', n: g.n!, e: g.e! }, { requireAlg: false });
  assert.throws(() => checkTeePublicKey({ kty: 'RSA', n: g.n!, e: 'AQ' }, { requireAlg: false }), { code: 'TEE_PUBKEY_WEAK' });
});

test('KBS attest refuses each hostile tee-pubkey with 400 InvalidTeePubKey before verifying, and audits it', async () => {
  const ts = tempStore();
  const { app, service } = await buildKbsApp({ store: ts.store, adminKeys: [], dev: true });
  try {
    for (const [what, key, code] of hostileKeys()) {
      const a = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
      const cookie = String(a.headers['set-cookie']).split(';')[0];
      const nonce = a.json().nonce as string;
      const rd = createHash('sha384').update(canonicalJson({ 'tee-pubkey': key, nonce, 'additional-evidence': '' })).digest('base64');
      const r = await app.inject({
        method: 'POST', url: '/kbs/v0/attest', headers: { cookie },
        payload: { 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { svn: '1', report_data: rd }, additional_evidence: '' } },
      });
      assert.equal(r.statusCode, 400, `${what}: ${r.body}`);
      assert.equal(r.json().type, ERR + 'InvalidTeePubKey', what);
      assert.match(r.json().detail, new RegExp(`^${code}:`), what);
    }
    const audit = await service.store.listAudit({ action: 'kbs.attest', limit: 100 });
    assert.equal(audit.filter((e) => e.result === 'rejected' && /TEE_PUBKEY_/.test(String((e.details as { detail: string }).detail))).length, hostileKeys().length);
    // No token was issued for any of them.
    assert.equal(audit.filter((e) => e.result !== 'rejected').length, 0);
  } finally {
    await app.close();
    await ts.cleanup();
  }
});

test('/v1/attest refuses a weak publicKey (the cnf key the KBS would encrypt to) with 400 bad-public-key, audited', async () => {
  const ts = tempStore();
  const { app, service } = await buildAttestationApp({ store: ts.store, adminKeys: [], dev: true });
  try {
    for (const [what, key] of hostileKeys()) {
      const ch = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json();
      const r = await app.inject({ method: 'POST', url: '/v1/attest', payload: { tee: 'sample', evidence: Buffer.from('{}').toString('base64'), nonce: ch.nonce, publicKey: key } });
      assert.equal(r.statusCode, 400, what);
      assert.match(r.json().type, /bad-public-key$/, what);
    }
    const audit = await service.store.listAudit({ action: 'attest', limit: 100 });
    assert.equal(audit.filter((e) => e.result === 'rejected').length, hostileKeys().length);
  } finally {
    await app.close();
    await ts.cleanup();
  }
});

test('KBS refusals before verification are audited too: no session, malformed attestation, bad resource path', async () => {
  const ts = tempStore();
  const { app, service } = await buildKbsApp({ store: ts.store, adminKeys: [], dev: true });
  try {
    const noSession = await app.inject({ method: 'POST', url: '/kbs/v0/attest', payload: {} });
    assert.equal(noSession.json().type, ERR + 'SessionExpired');
    const a = await app.inject({ method: 'POST', url: '/kbs/v0/auth', payload: { version: '0.4.0', tee: 'sample', 'extra-params': '' } });
    const cookie = String(a.headers['set-cookie']).split(';')[0];
    const bad = await app.inject({ method: 'POST', url: '/kbs/v0/attest', headers: { cookie }, payload: { 'runtime-data': 5 } });
    assert.equal(bad.json().type, ERR + 'SerdeError');
    const path = await app.inject({ url: '/kbs/v0/resource/a/b' });
    assert.equal(path.json().type, ERR + 'InvalidRequestPath');
    const audit = await service.store.listAudit({ limit: 50 });
    assert.ok(audit.some((e) => e.action === 'kbs.attest' && e.result === 'rejected' && /no live KBS session/.test(String((e.details as { detail: string }).detail))));
    assert.ok(audit.some((e) => e.action === 'kbs.attest' && e.result === 'rejected' && /runtime-data/.test(String((e.details as { detail: string }).detail))));
    assert.ok(audit.some((e) => e.action === 'resource.get' && e.result === 'denied' && e.target === 'a/b'));
  } finally {
    await app.close();
    await ts.cleanup();
  }
});
