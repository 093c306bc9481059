// The controller's EAR token check (node:crypto ES256 + hand-made claim checks): every refusal jose's jwtVerify
// made is still made, with the same NodeTokenError codes; tokens are signed here with jose (an independent signer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { NodeTokenOptions } from '../../../src/k8s/controllers/node-trust-token.js';
import { NodeKeyRing, NodeTokenError, tokenKid, verifyNodeToken } from '../../../src/k8s/controllers/node-trust-token.js';

const ISS = 'https://attestation.example';
const AUD = 'coffer-node-trust';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const sec = (ms: number) => Math.floor(ms / 1000);

const submods = (node: unknown = 'n1') => ({ tpm: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { runtime_data_claims: { node }, platform: { akTrust: 'enrolled', akAttester: node }, measurements: { pcrsha256_7: 'AB' } } } });

async function setup() {
  const a = await generateKeyPair('ES256', { extractable: true });
  const b = await generateKeyPair('ES256', { extractable: true });
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const jwk = async (k: CryptoKey | object, kid: string, extra: Partial<JWK> = {}) => ({ ...(await exportJWK(k as CryptoKey)), kid, ...extra });
  const jwks = { keys: [await jwk(rsa.publicKey, 'r1', { alg: 'RS256' }), await jwk(a.publicKey, 'k1', { alg: 'ES256', use: 'sig' }), await jwk(b.publicKey, 'k2')] };
  const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'ES256', kid: 'k1' }, key: CryptoKey | object = a.privateKey) =>
    new SignJWT({ iss: ISS, aud: AUD, iat: sec(NOW), exp: sec(NOW) + 300, jti: 'tok-1', submods: submods(), ...claims }).setProtectedHeader(header as never).sign(key as CryptoKey);
  return { jwks, ring: new NodeKeyRing(jwks), sign, a, b, rsa };
}

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    assert.ok(e instanceof NodeTokenError, String(e));
    return e.code;
  }
};

test('a good token: report with node, token id, times and measurements; the JWKS document and a key ring agree', async () => {
  const s = await setup();
  const t = await s.sign({});
  for (const keys of [s.jwks, s.ring]) {
    const r = await verifyNodeToken(t, keys, { issuer: ISS, audience: AUD, now: NOW });
    assert.deepEqual({ node: r.node, tokenId: r.tokenId, iat: r.issuedAt, exp: r.expiresAt, m: r.tees[0].measurements }, { node: 'n1', tokenId: 'tok-1', iat: sec(NOW) * 1000, exp: (sec(NOW) + 300) * 1000, m: { pcrsha256_7: 'ab' } });
  }
  assert.equal(tokenKid(t), 'k1');
  // aud may be an array that contains ours; a token without a kid is tried against every ES256 key.
  assert.equal(await code(verifyNodeToken(await s.sign({ aud: ['other', AUD] }), s.ring, { issuer: ISS, audience: AUD, now: NOW })), 'accepted');
  assert.equal(await code(verifyNodeToken(await s.sign({}, { alg: 'ES256' }, s.b.privateKey), s.ring, { issuer: ISS, audience: AUD, now: NOW })), 'accepted');
});

test('signature, key and header refusals', async () => {
  const s = await setup();
  const o = { issuer: ISS, audience: AUD, now: NOW };
  const forged = await s.sign({}, { alg: 'ES256', kid: 'k1' }, s.b.privateKey); // right kid, wrong key
  assert.equal(await code(verifyNodeToken(forged, s.ring, o)), 'TOKEN_SIGNATURE');
  assert.equal(await code(verifyNodeToken(await s.sign({}, { alg: 'ES256', kid: 'nope' }), s.ring, o)), 'TOKEN_UNKNOWN_KEY');
  // An RS256 token under the RSA key's kid: ES256 only (the RSA key is not even in the ring).
  assert.equal(await code(verifyNodeToken(await s.sign({}, { alg: 'RS256', kid: 'r1' }, s.rsa.privateKey), s.ring, o)), 'TOKEN_MALFORMED');
  const good = await s.sign({});
  const [h, p, sig] = good.split('.');
  const hdr = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
  assert.equal(await code(verifyNodeToken(`${hdr({ alg: 'none', kid: 'k1' })}.${p}.`, s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken(`${hdr({ alg: 'ES256', kid: 'k1', crit: ['exp'] })}.${p}.${sig}`, s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken(`${hdr({ alg: 'ES256', kid: 'k1', b64: false })}.${p}.${sig}`, s.ring, o)), 'TOKEN_MALFORMED');
  // Payload edited (node name), signature truncated, padded, not base64url, extra segment, garbage.
  const edited = JSON.parse(Buffer.from(p, 'base64url').toString());
  edited.submods.tpm['ear.veraison.annotated-evidence'].runtime_data_claims.node = 'n2';
  assert.equal(await code(verifyNodeToken(`${h}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${sig}`, s.ring, o)), 'TOKEN_SIGNATURE');
  assert.equal(await code(verifyNodeToken(`${h}.${p}.${sig.slice(0, -4)}`, s.ring, o)), 'TOKEN_SIGNATURE');
  assert.equal(await code(verifyNodeToken(`${h}.${p}.${sig}AAAA`, s.ring, o)), 'TOKEN_SIGNATURE');
  assert.equal(await code(verifyNodeToken(`${h}.${p}.${sig.slice(0, -2)}+/`, s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken(`${good}.x`, s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken('x.y.z', s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken('', s.ring, o)), 'TOKEN_MALFORMED');
  assert.equal(await code(verifyNodeToken('a'.repeat(300 * 1024), s.ring, o)), 'TOKEN_TOO_LARGE');
  // A JWKS whose only keys are not ES256 P-256 keys verifies nothing.
  assert.equal(await code(verifyNodeToken(good, new NodeKeyRing({ keys: [s.jwks.keys[0], { ...s.jwks.keys[1], crv: 'P-384' }, { ...s.jwks.keys[1], use: 'enc' }] }), o)), 'TOKEN_UNKNOWN_KEY');
});

test('claim refusals: iss, aud, exp, nbf, iat, jti, required claims, node binding', async () => {
  const s = await setup();
  const o: NodeTokenOptions = { issuer: ISS, audience: AUD, now: NOW };
  const v = async (claims: Record<string, unknown>, oo = o) => code(verifyNodeToken(await s.sign(claims), s.ring, oo));
  assert.equal(await v({ iss: 'https://evil.example' }), 'TOKEN_CLAIMS');
  assert.equal(await v({ aud: 'kbs' }), 'TOKEN_CLAIMS');
  assert.equal(await v({ aud: ['kbs'] }), 'TOKEN_CLAIMS');
  // exp: within the 30 s tolerance still good; beyond it expired; a custom tolerance applies.
  assert.equal(await v({ iat: sec(NOW) - 400, exp: sec(NOW) - 20 }), 'accepted');
  assert.equal(await v({ iat: sec(NOW) - 400, exp: sec(NOW) - 31 }), 'TOKEN_EXPIRED');
  assert.equal(await v({ iat: sec(NOW) - 400, exp: sec(NOW) - 20 }, { ...o, clockToleranceSec: 0 }), 'TOKEN_EXPIRED');
  assert.equal(await v({ exp: 'soon' }), 'TOKEN_CLAIMS');
  assert.equal(await v({ nbf: sec(NOW) + 60 }), 'TOKEN_CLAIMS');
  assert.equal(await v({ nbf: sec(NOW) + 10 }), 'accepted');
  assert.equal(await v({ iat: sec(NOW) + 60, exp: sec(NOW) + 360 }), 'TOKEN_CLAIMS'); // issued in the future
  assert.equal(await v({ exp: sec(NOW) }), 'TOKEN_CLAIMS'); // exp not after iat
  for (const c of ['exp', 'iat', 'jti', 'aud', 'iss']) assert.equal(await v({ [c]: undefined }), 'TOKEN_CLAIMS', c);
  assert.equal(await v({ jti: '' }), 'TOKEN_CLAIMS');
  assert.equal(await v({ submods: {} }), 'TOKEN_CLAIMS');
  assert.equal(await v({ submods: submods(null) }), 'TOKEN_NODE_BINDING');
  assert.equal(await v({ submods: submods('Not_A_Node') }), 'TOKEN_NODE_BINDING');
  assert.equal(await v({ submods: { ...submods('n1'), snp: submods('n2').tpm } }), 'TOKEN_NODE_BINDING');
});
