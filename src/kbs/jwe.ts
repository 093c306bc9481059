import { constants, createCipheriv, createECDH, createHash, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { KbsError } from './errors.js';
import { checkTeePublicKey, EC_CURVES, TeeKeyError } from '../tee/common/tee-pubkey.js';

/**
 * The KBS resource response: a flattened JWE exactly as Trustee's KBS emits it (kbs/src/jwe/mod.rs + kbs-types
 * Response): {protected, encrypted_key, iv, ciphertext, tag}, base64url without padding, no `aad` member, content
 * encrypted with A256GCM under a fresh CEK, GCM AAD = the ASCII of the `protected` string (RFC 7516 §5.1).
 * Key management by the TEE key: RSA-OAEP-256 (RSA ≥ 2048 bits, e = 65537), ECDH-ES+A256KW on P-256/P-384/P-521
 * (EC, point on the curve): checked by tee/common/tee-pubkey.ts at attest time and again here. Trustee also still accepts RSA1_5
 * (PKCS#1 v1.5); Coffer refuses it (padding-oracle prone, deprecated).
 */
export interface KbsJweResponse {
  protected: string;
  encrypted_key: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

export interface TeePubKey {
  kty: string;
  alg?: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function b64uStrict(s: unknown, what: string, len?: number): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]+$/.test(s)) throw new KbsError('JweError', `TEE public key ${what} is not base64url`);
  const b = Buffer.from(s, 'base64url');
  if (len !== undefined && b.length !== len) throw new KbsError('JweError', `TEE public key ${what} must be ${len} bytes, got ${b.length}`);
  return b;
}

/** NIST SP 800-56A Concat KDF as JWA §4.6.2 uses it: SHA-256, AlgorithmID = alg, empty PartyU/V, keydatalen. */
export function concatKdf(z: Uint8Array, alg: string, keyBits: number, apu: Uint8Array = new Uint8Array(0), apv: Uint8Array = new Uint8Array(0)): Buffer {
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const otherInfo = Buffer.concat([len(alg.length), Buffer.from(alg), len(apu.length), apu, len(apv.length), apv, len(keyBits)]);
  const out: Buffer[] = [];
  for (let i = 1; out.length * 32 < keyBits / 8; i++) out.push(createHash('sha256').update(len(i)).update(z).update(otherInfo).digest());
  return Buffer.concat(out).subarray(0, keyBits / 8);
}

function wrapKey(kek: Buffer, cek: Buffer): Buffer {
  // RFC 3394 AES key wrap with the default IV.
  const c = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  return Buffer.concat([c.update(cek), c.final()]);
}

function keyManagement(key: TeePubKey, cek: Buffer): { header: Record<string, unknown>; encryptedKey: Buffer } {
  // Never encrypt to a key that was not checked: tokens issued before a check existed reach this point too.
  try {
    checkTeePublicKey(key);
  } catch (e) {
    if (e instanceof TeeKeyError) throw new KbsError('JweError', e.message);
    throw e;
  }
  if (key.kty === 'RSA') {
    const pub = createPublicKey({ key: { kty: 'RSA', n: b64uStrict(key.n, 'n').toString('base64url'), e: b64uStrict(key.e, 'e').toString('base64url') }, format: 'jwk' });
    if (key.alg === 'RSA-OAEP-256') {
      return { header: { alg: 'RSA-OAEP-256', enc: 'A256GCM' }, encryptedKey: publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek) };
    }
    throw new KbsError('JweError', `algorithm ${key.alg} is not supported for RSA TEE keys (RSA-OAEP-256; RSA1_5 is refused as insecure)`);
  }
  if (key.kty === 'EC') {
    const curve = key.crv ? EC_CURVES[key.crv] : undefined;
    if (!curve || key.alg !== 'ECDH-ES+A256KW') throw new KbsError('JweError', `curve ${key.crv} and algorithm ${key.alg} is not supported (P-256/P-384/P-521 with ECDH-ES+A256KW)`);
    const c = { name: curve.nodeName, size: curve.size };
    const x = b64uStrict(key.x, 'x', c.size);
    const y = b64uStrict(key.y, 'y', c.size);
    const eph = createECDH(c.name);
    eph.generateKeys();
    let z: Buffer;
    try {
      z = eph.computeSecret(Buffer.concat([Buffer.from([4]), x, y]));
    } catch {
      throw new KbsError('JweError', 'the TEE public key is not a point on its curve');
    }
    const kek = concatKdf(z, 'ECDH-ES+A256KW', 256);
    const pub = eph.getPublicKey();
    const epk = { crv: key.crv, kty: 'EC', x: b64u(pub.subarray(1, 1 + c.size)), y: b64u(pub.subarray(1 + c.size)) };
    return { header: { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk }, encryptedKey: wrapKey(kek, cek) };
  }
  throw new KbsError('JweError', `TEE key type ${key.kty} is not supported (RSA, EC)`);
}

export function encryptResource(key: TeePubKey, payload: Uint8Array): KbsJweResponse {
  const cek = randomBytes(32);
  const { header, encryptedKey } = keyManagement(key, cek);
  // Compact JSON in Trustee's member order (alg, enc, then epk with sorted members): clients re-serialise the
  // parsed header to recompute the AAD, so any other order would fail their tag check.
  const protectedB64 = b64u(Buffer.from(JSON.stringify(header)));
  const iv = randomBytes(12);
  const gcm = createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(protectedB64, 'ascii'));
  const ciphertext = Buffer.concat([gcm.update(payload), gcm.final()]);
  return { protected: protectedB64, encrypted_key: b64u(encryptedKey), iv: b64u(iv), ciphertext: b64u(ciphertext), tag: b64u(gcm.getAuthTag()) };
}
