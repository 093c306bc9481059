import { CofferError } from './errors.js';

/**
 * Checks a TEE public key (JWK members, base64url) before anything is encrypted to it, so a weak or malformed key is
 * refused when it is presented (attest time) and not after a secret was wrapped for it. RSA: a modulus of 2048 to
 * 16384 bits and e = 65537 (e = 1 would "encrypt" to the plaintext). EC: P-256, P-384 or P-521 with coordinates of
 * the curve's exact size, inside the field, and on the curve (an off-curve point is an invalid-curve attack).
 */
export class TeeKeyError extends CofferError {}

export interface TeeKeyMembers {
  kty?: unknown;
  alg?: unknown;
  crv?: unknown;
  n?: unknown;
  e?: unknown;
  x?: unknown;
  y?: unknown;
}

/** Algorithms Coffer's KBS can encrypt a resource to (Trustee's set minus RSA1_5). */
export const TEE_KEY_ALGS = { RSA: ['RSA-OAEP-256'], EC: ['ECDH-ES+A256KW'] } as const;

export const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 16384;

/** Short Weierstrass a = -3 curves: y² = x³ - 3x + b (mod p). */
export const EC_CURVES: Record<string, { size: number; nodeName: string; p: bigint; b: bigint }> = {
  'P-256': {
    size: 32, nodeName: 'prime256v1',
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  'P-384': {
    size: 48, nodeName: 'secp384r1',
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  'P-521': {
    size: 66, nodeName: 'secp521r1',
    p: (1n << 521n) - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
};

const bad = (code: string, m: string) => new TeeKeyError(code, m);

function b64u(v: unknown, what: string, max: number): Buffer {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !/^[A-Za-z0-9_-]+$/.test(v)) throw bad('TEE_PUBKEY_INVALID', `TEE public key ${what} is not base64url`);
  return Buffer.from(v, 'base64url');
}

const toBig = (b: Buffer) => (b.length ? BigInt(`0x${b.toString('hex')}`) : 0n);

function mod(a: bigint, p: bigint): bigint {
  const r = a % p;
  return r < 0n ? r + p : r;
}

export function isOnCurve(crv: string, x: Buffer, y: Buffer): boolean {
  const c = EC_CURVES[crv];
  if (!c) return false;
  const X = toBig(x);
  const Y = toBig(y);
  if (X >= c.p || Y >= c.p) return false;
  return mod(Y * Y - (X * X * X - 3n * X + c.b), c.p) === 0n;
}

/**
 * Throws TeeKeyError (code TEE_PUBKEY_WEAK / TEE_PUBKEY_INVALID / TEE_PUBKEY_UNSUPPORTED) unless the key is
 * acceptable. `requireAlg`: the KBS needs a key-management algorithm it implements; a `/v1` token's `cnf` key may
 * omit `alg`.
 */
export function checkTeePublicKey(k: TeeKeyMembers, o: { requireAlg: boolean } = { requireAlg: true }): void {
  if (k.kty === 'RSA') {
    if ((o.requireAlg || k.alg !== undefined) && !(TEE_KEY_ALGS.RSA as readonly unknown[]).includes(k.alg)) {
      throw bad('TEE_PUBKEY_UNSUPPORTED', `algorithm ${String(k.alg)} is not supported for RSA TEE keys (RSA-OAEP-256; RSA1_5 is refused as insecure)`);
    }
    const n = b64u(k.n, 'n', Math.ceil((RSA_MAX_BITS / 8) * 4 / 3) + 4);
    const e = b64u(k.e, 'e', 12);
    let i = 0;
    while (i < n.length && n[i] === 0) i++;
    const bits = n.length - i === 0 ? 0 : (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]));
    if (bits < RSA_MIN_BITS) throw bad('TEE_PUBKEY_WEAK', `the RSA TEE key has a ${bits}-bit modulus; at least ${RSA_MIN_BITS} bits are required`);
    if (bits > RSA_MAX_BITS) throw bad('TEE_PUBKEY_INVALID', `the RSA TEE key has a ${bits}-bit modulus; at most ${RSA_MAX_BITS} bits are accepted`);
    if ((n[n.length - 1] & 1) === 0) throw bad('TEE_PUBKEY_INVALID', 'the RSA TEE key modulus is even');
    if (toBig(e) !== 65537n) throw bad('TEE_PUBKEY_WEAK', `the RSA TEE key has public exponent ${toBig(e)}; only 65537 is accepted`);
    return;
  }
  if (k.kty === 'EC') {
    const c = typeof k.crv === 'string' ? EC_CURVES[k.crv] : undefined;
    if (!c) throw bad('TEE_PUBKEY_UNSUPPORTED', `curve ${String(k.crv)} is not supported for EC TEE keys (P-256, P-384, P-521)`);
    if ((o.requireAlg || k.alg !== undefined) && !(TEE_KEY_ALGS.EC as readonly unknown[]).includes(k.alg)) {
      throw bad('TEE_PUBKEY_UNSUPPORTED', `algorithm ${String(k.alg)} is not supported for EC TEE keys (ECDH-ES+A256KW)`);
    }
    const x = b64u(k.x, 'x', 100);
    const y = b64u(k.y, 'y', 100);
    if (x.length !== c.size || y.length !== c.size) throw bad('TEE_PUBKEY_INVALID', `EC TEE key coordinates must be ${c.size} bytes on ${String(k.crv)}, got ${x.length} and ${y.length}`);
    if (!isOnCurve(k.crv as string, x, y)) throw bad('TEE_PUBKEY_INVALID', `the EC TEE key is not a point on ${String(k.crv)}`);
    return;
  }
  throw bad('TEE_PUBKEY_UNSUPPORTED', `TEE key type ${String(k.kty)} is not supported (RSA, EC)`);
}
