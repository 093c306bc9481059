import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createCipheriv } from 'node:crypto';
import { flattenedDecrypt } from 'jose';
import { concatKdf, encryptResource } from '../../src/kbs/jwe.js';

const payload = new TextEncoder().encode('this is a test data');

for (const [crv, name] of [['P-256', 'prime256v1'], ['P-384', 'secp384r1'], ['P-521', 'secp521r1']] as const) {
  test(`ECDH-ES+A256KW on ${crv}: Trustee's exact JSON shape; decrypts with an independent JOSE library`, async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: name });
    const j = publicKey.export({ format: 'jwk' });
    const r = encryptResource({ kty: 'EC', crv, alg: 'ECDH-ES+A256KW', x: j.x!, y: j.y! }, payload);
    assert.deepEqual(Object.keys(r), ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
    for (const v of Object.values(r)) assert.match(v, /^[A-Za-z0-9_-]+$/); // base64url, no padding
    const header = Buffer.from(r.protected, 'base64url').toString();
    assert.match(header, new RegExp(`^\\{"alg":"ECDH-ES\\+A256KW","enc":"A256GCM","epk":\\{"crv":"${crv}","kty":"EC","x":"[^"]+","y":"[^"]+"\\}\\}$`));
    assert.equal(Buffer.from(r.encrypted_key, 'base64url').length, 40);
    assert.equal(Buffer.from(r.iv, 'base64url').length, 12);
    assert.equal(Buffer.from(r.tag, 'base64url').length, 16);
    const { plaintext } = await flattenedDecrypt(r, privateKey);
    assert.deepEqual(Buffer.from(plaintext), Buffer.from(payload));
    // The AAD is the protected string: a re-ordered header must fail the tag check.
    const reordered = Buffer.from(JSON.stringify({ enc: 'A256GCM', ...JSON.parse(header) })).toString('base64url');
    await assert.rejects(flattenedDecrypt({ ...r, protected: reordered }, privateKey));
  });
}

test('RSA-OAEP-256 decrypts; RSA1_5, unknown curves and bad points are JweError', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const j = publicKey.export({ format: 'jwk' });
  const r = encryptResource({ kty: 'RSA', alg: 'RSA-OAEP-256', n: j.n!, e: j.e! }, payload);
  assert.equal(Buffer.from(r.protected, 'base64url').toString(), '{"alg":"RSA-OAEP-256","enc":"A256GCM"}');
  assert.deepEqual(Buffer.from((await flattenedDecrypt(r, privateKey)).plaintext), Buffer.from(payload));
  assert.throws(() => encryptResource({ kty: 'RSA', alg: 'RSA1_5', n: j.n!, e: j.e! }, payload), { variant: 'JweError' });
  assert.throws(() => encryptResource({ kty: 'EC', crv: 'P-384', alg: 'ECDH-ES+A256KW', x: 'AA', y: 'AA' }, payload), { variant: 'JweError' });
  assert.throws(() => encryptResource({ kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: Buffer.alloc(32, 1).toString('base64url'), y: Buffer.alloc(32, 2).toString('base64url') }, payload), { variant: 'JweError' });
  assert.throws(() => encryptResource({ kty: 'oct' }, payload), { variant: 'JweError' });
});

test('Concat KDF matches RFC 7518 Appendix C; AES key wrap matches RFC 3394 §4.6', () => {
  const z = Buffer.from([158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196]);
  const k = concatKdf(z, 'A128GCM', 128, Buffer.from('Alice'), Buffer.from('Bob'));
  assert.equal(k.toString('base64url'), 'VqqN6vgjbSBcIijNcacQGg');
  const kek = Buffer.from('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', 'hex');
  const data = Buffer.from('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F', 'hex');
  const c = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  assert.equal(Buffer.concat([c.update(data), c.final()]).toString('hex').toUpperCase(), '28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21');
});
