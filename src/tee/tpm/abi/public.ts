import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { ByteWriter } from './writer.js';
import { TPM_ALG, TPM_ECC_CURVE, algName, hashAlgById } from './constants.js';

export interface SymDef {
  alg: number;
  keyBits?: number;
  mode?: number;
}
export interface Scheme {
  alg: number;
  hash?: number;
  /** ECDAA only. */
  count?: number;
}

interface TpmtPublicBase {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  symmetric: SymDef;
  scheme: Scheme;
}
export interface RsaPublic extends TpmtPublicBase {
  type: typeof TPM_ALG.RSA;
  keyBits: number;
  /** 0 means the default 65537. */
  exponent: number;
  modulus: Uint8Array;
}
export interface EccPublic extends TpmtPublicBase {
  type: typeof TPM_ALG.ECC;
  curveId: number;
  kdf: Scheme;
  x: Uint8Array;
  y: Uint8Array;
}
/** TPMT_PUBLIC for the asymmetric key types an AK or EK can be. */
export type TpmtPublic = RsaPublic | EccPublic;

const WHAT = 'TPMT_PUBLIC';

const CURVES: Record<number, { crv: string; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { crv: 'P-256', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { crv: 'P-384', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { crv: 'P-521', size: 66 },
};

function bad(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('TPM_PUBLIC_MALFORMED', `${WHAT}: ${msg}`);
}

function tpm2b(r: ByteReader, field: string, max: number): Uint8Array {
  const n = r.u16be(`${field}.size`);
  if (n > max) throw bad(`${field} size ${n} exceeds ${max}`);
  return r.bytes(n, field);
}

function readSym(r: ByteReader): SymDef {
  const alg = r.u16be('symmetric.algorithm');
  if (alg === TPM_ALG.NULL) return { alg };
  return { alg, keyBits: r.u16be('symmetric.keyBits'), mode: r.u16be('symmetric.mode') };
}

/** Schemes with no details (RSAES) and with hash (+count for ECDAA); anything else is unknown → rejected. */
const SCHEMES_WITH_HASH = new Set([0x0014, 0x0016, 0x0017, 0x0018, 0x0019, 0x001b, 0x001c, 0x001d, 0x0007, 0x0020, 0x0021, 0x0022]);
function readScheme(r: ByteReader, field: string): Scheme {
  const alg = r.u16be(`${field}.scheme`);
  if (alg === TPM_ALG.NULL || alg === 0x0015) return { alg };
  if (alg === 0x001a) return { alg, hash: r.u16be(`${field}.hash`), count: r.u16be(`${field}.count`) };
  if (SCHEMES_WITH_HASH.has(alg)) return { alg, hash: r.u16be(`${field}.hash`) };
  throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: ${field} scheme ${algName(alg)} is not supported`);
}

function writeScheme(w: ByteWriter, s: Scheme): void {
  w.u16(s.alg);
  if (s.hash !== undefined) w.u16(s.hash);
  if (s.count !== undefined) w.u16(s.count);
}

export function readPublic(r: ByteReader): TpmtPublic {
  const type = r.u16be('type');
  const nameAlg = r.u16be('nameAlg');
  const objectAttributes = r.u32be('objectAttributes');
  const authPolicy = tpm2b(r, 'authPolicy', 64);
  if (type === TPM_ALG.RSA) {
    const symmetric = readSym(r);
    const scheme = readScheme(r, 'rsa');
    const keyBits = r.u16be('keyBits');
    const exponent = r.u32be('exponent');
    const modulus = tpm2b(r, 'unique.rsa', 512);
    return { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, keyBits, exponent, modulus };
  }
  if (type === TPM_ALG.ECC) {
    const symmetric = readSym(r);
    const scheme = readScheme(r, 'ecc');
    const curveId = r.u16be('curveID');
    const kdf = readScheme(r, 'kdf');
    const x = tpm2b(r, 'unique.ecc.x', 66);
    const y = tpm2b(r, 'unique.ecc.y', 66);
    return { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveId, kdf, x, y };
  }
  throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: key type ${algName(type)} is not an RSA or ECC key`);
}

export function parsePublic(buf: Uint8Array): TpmtPublic {
  const r = new ByteReader(buf, WHAT);
  const p = readPublic(r);
  r.end();
  return p;
}

/** TPM2B_PUBLIC: u16 size then TPMT_PUBLIC (what tpm2_readpublic -f tss and tpm2_createak -u write). */
export function parsePublic2b(buf: Uint8Array): TpmtPublic {
  const r = new ByteReader(buf, 'TPM2B_PUBLIC');
  const n = r.u16be('size');
  if (n !== r.remaining) throw bad(`TPM2B_PUBLIC size ${n} does not match the ${r.remaining} bytes that follow`);
  return parsePublic(r.bytes(n, 'publicArea'));
}

export function serializePublic(p: TpmtPublic): Uint8Array {
  const w = new ByteWriter().u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  w.u16(p.symmetric.alg);
  if (p.symmetric.alg !== TPM_ALG.NULL) w.u16(p.symmetric.keyBits ?? 0).u16(p.symmetric.mode ?? 0);
  writeScheme(w, p.scheme);
  if (p.type === TPM_ALG.RSA) {
    w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
  } else {
    w.u16(p.curveId);
    writeScheme(w, p.kdf);
    w.tpm2b(p.x).tpm2b(p.y);
  }
  return w.finish();
}

export function serializePublic2b(p: TpmtPublic): Uint8Array {
  return new ByteWriter().tpm2b(serializePublic(p)).finish();
}

/** Name = nameAlg ‖ H_nameAlg(marshaled TPMT_PUBLIC) (Part 1 §16). */
export function objectName(p: TpmtPublic, marshaled = serializePublic(p)): Uint8Array {
  const h = hashAlgById(p.nameAlg);
  if (!h) throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: nameAlg ${algName(p.nameAlg)} is not supported`);
  const d = createHash(h.node).update(marshaled).digest();
  const out = new Uint8Array(2 + d.length);
  out[0] = p.nameAlg >> 8;
  out[1] = p.nameAlg & 0xff;
  out.set(d, 2);
  return out;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length > n) throw bad(`ECC coordinate is ${b.length} bytes, longer than the curve's ${n}`);
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

export function curveInfo(curveId: number): { crv: string; size: number } | undefined {
  return CURVES[curveId];
}

/** The public key as a node KeyObject (RSA or EC), ready for crypto.verify. */
export function publicToKeyObject(p: TpmtPublic): KeyObject {
  try {
    if (p.type === TPM_ALG.RSA) {
      if (p.modulus.length * 8 !== p.keyBits) throw bad(`RSA modulus is ${p.modulus.length * 8} bits, keyBits says ${p.keyBits}`);
      const e = p.exponent === 0 ? 65537 : p.exponent;
      const eb = Buffer.alloc(4);
      eb.writeUInt32BE(e);
      let i = 0;
      while (i < 3 && eb[i] === 0) i++;
      return createPublicKey({ key: { kty: 'RSA', n: b64u(p.modulus), e: b64u(eb.subarray(i)) }, format: 'jwk' });
    }
    const c = CURVES[p.curveId];
    if (!c) throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: ECC curve 0x${p.curveId.toString(16)} is not supported`);
    return createPublicKey({
      key: { kty: 'EC', crv: c.crv, x: b64u(leftPad(p.x, c.size)), y: b64u(leftPad(p.y, c.size)) },
      format: 'jwk',
    });
  } catch (e) {
    if (e instanceof EvidenceFormatError) throw e;
    throw bad(`the public key is not a valid key: ${(e as Error).message}`);
  }
}

/** An AK as supplied by the user: the KeyObject, plus the TPM public area when the file carried one. */
export interface AkPublic {
  key: KeyObject;
  tpmPublic?: TpmtPublic;
  name?: Uint8Array;
  format: 'pem' | 'der' | 'tpm2b' | 'tpmt' | 'jwk';
  /** SHA-256 of the SPKI, hex; filled on first use (the verifier caches parsed AKs, so it is computed once). */
  fingerprint?: string;
  /** Hex of `name`, memoized like the fingerprint. */
  nameHex?: string;
  /** Key type and EC coordinate size, memoized: KeyObject's getters cross into C++ on every call. */
  keyType?: string;
  ecSize?: number;
}

/** Reads what `tpm2_readpublic -f pem|der|tss|tpmt` (and tpm2_createak -u) write, or a JWK JSON. */
export function parseAkPublic(buf: Uint8Array): AkPublic {
  if (buf.length === 0) throw bad('the AK file is empty');
  const text = Buffer.from(buf.subarray(0, Math.min(64, buf.length))).toString('latin1');
  try {
    if (text.includes('-----BEGIN')) {
      return { key: createPublicKey({ key: Buffer.from(buf).toString('utf8'), format: 'pem' }), format: 'pem' };
    }
    if (text.trimStart().startsWith('{')) {
      const jwk = JSON.parse(Buffer.from(buf).toString('utf8')) as Record<string, unknown>;
      return { key: createPublicKey({ key: jwk as never, format: 'jwk' }), format: 'jwk' };
    }
  } catch (e) {
    throw new EvidenceFormatError('TPM_PUBLIC_MALFORMED', `the AK file is not a valid PEM/JWK public key: ${(e as Error).message}`);
  }
  if (buf[0] === 0x30) {
    try {
      return { key: createPublicKey({ key: Buffer.from(buf), format: 'der', type: 'spki' }), format: 'der' };
    } catch {
      // fall through: might still be a TPM structure
    }
  }
  const size = buf.length >= 2 ? (buf[0] << 8) | buf[1] : -1;
  const tpmPublic = size === buf.length - 2 ? parsePublic2b(buf) : parsePublic(buf);
  const marshaled = serializePublic(tpmPublic);
  return {
    key: publicToKeyObject(tpmPublic),
    tpmPublic,
    name: objectName(tpmPublic, marshaled),
    format: size === buf.length - 2 ? 'tpm2b' : 'tpmt',
  };
}
