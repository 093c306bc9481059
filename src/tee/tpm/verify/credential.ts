import { constants, createCipheriv, createECDH, createHash, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { UsageError } from '../../common/errors.js';
import { TPM_ALG, TPM_ECC_CURVE, hashAlgById } from '../abi/constants.js';
import { publicToKeyObject, type EccPublic, type TpmtPublic } from '../abi/public.js';
import { ByteWriter } from '../abi/writer.js';

/** KDFa (Part 1 §11.4.10.2): counter-mode HMAC KDF; `label` gets its terminating zero here. */
export function kdfa(hashNode: string, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const out: Buffer[] = [];
  let have = 0;
  const bitsBuf = Buffer.alloc(4);
  bitsBuf.writeUInt32BE(bits);
  for (let i = 1; have * 8 < bits; i++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(i);
    const block = createHmac(hashNode, key).update(ctr).update(label).update(Buffer.of(0)).update(contextU).update(contextV).update(bitsBuf).digest();
    out.push(block);
    have += block.length;
  }
  return new Uint8Array(Buffer.concat(out).subarray(0, bits / 8));
}

/**
 * KDFe (Part 1 §11.4.10.3): the SP 800-56A concatenation KDF the TPM uses for ECDH secrets:
 * H(counter ‖ Z ‖ label ‖ 0 ‖ partyUInfo ‖ partyVInfo) per block; `label` gets its terminating zero here.
 */
export function kdfe(hashNode: string, z: Uint8Array, label: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Uint8Array {
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(i);
    const block = createHash(hashNode).update(ctr).update(z).update(label).update(Buffer.of(0)).update(partyU).update(partyV).digest();
    out.push(block);
    have += block.length;
  }
  return new Uint8Array(Buffer.concat(out).subarray(0, bits / 8));
}

const ECDH_CURVES: Record<number, { node: string; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { node: 'prime256v1', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { node: 'secp384r1', size: 48 },
};

function pad(b: Uint8Array, n: number): Buffer {
  if (b.length > n) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', `an EK coordinate is ${b.length} bytes, longer than the curve's ${n}`);
  return Buffer.concat([Buffer.alloc(n - b.length), b]);
}

/**
 * The ECC seed (Part 1 Annex C.6.4): an ephemeral key on the EK's curve, Z = x(d_e·Q_EK), seed =
 * KDFe(nameAlg, Z, "IDENTITY", x(Q_e), x(Q_EK)); the encrypted secret is the TPMS_ECC_POINT Q_e. The TPM redoes
 * the ECDH with the EK's private key in ActivateCredential.
 */
function eccSeed(ek: EccPublic, hashNode: string, digestSize: number): { seed: Uint8Array; encrypted: Uint8Array } {
  const c = ECDH_CURVES[ek.curveId];
  if (!c) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', `makeCredential supports ECC EKs on P-256 and P-384 only (curve 0x${ek.curveId.toString(16)})`);
  publicToKeyObject(ek); // validates the point is on the curve before any secret is derived from it
  const ecdh = createECDH(c.node);
  ecdh.generateKeys();
  const ekX = pad(ek.x, c.size);
  const z = ecdh.computeSecret(Buffer.concat([Buffer.of(4), ekX, pad(ek.y, c.size)]));
  const pub = ecdh.getPublicKey(); // 04 ‖ x ‖ y
  const ex = pub.subarray(1, 1 + c.size);
  const ey = pub.subarray(1 + c.size);
  const seed = kdfe(hashNode, z, 'IDENTITY', ex, ek.x, digestSize * 8);
  return { seed, encrypted: new ByteWriter().tpm2b(ex).tpm2b(ey).finish() };
}

export interface Credential {
  /** TPM2B_ID_OBJECT for TPM2_ActivateCredential (what tpm2_makecredential writes after its header). */
  credentialBlob: Uint8Array;
  /**
   * TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP-encrypted to the EK with label "IDENTITY" (RSA EK), or the
   * ephemeral ECDH point whose shared secret derives the seed (ECC EK).
   */
  secret: Uint8Array;
}

/**
 * TPM2_MakeCredential done in software by the verifier (Part 1 §24): wraps `credential` so that only the TPM
 * holding the EK can recover it, and only for the key named `akName` loaded in that TPM. A TPM that returns the
 * credential from ActivateCredential thereby proves the AK lives beside the (certified) EK. RSA and ECC EKs;
 * `seed` fixes the RSA seed (tests only: a seed must be fresh and secret).
 */
export function makeCredential(ek: TpmtPublic, akName: Uint8Array, credential: Uint8Array, seed?: Uint8Array): Credential {
  const h = hashAlgById(ek.nameAlg);
  if (!h) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'the EK nameAlg is not supported');
  if (ek.symmetric.alg !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB || !ek.symmetric.keyBits) {
    throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'the EK is not an AES-CFB storage key');
  }
  if (credential.length > h.size) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', `the credential is longer than ${h.size} bytes`);
  let s: Uint8Array;
  let encSeed: Uint8Array;
  if (ek.type === TPM_ALG.RSA) {
    s = seed ?? new Uint8Array(randomBytes(h.size));
    encSeed = publicEncrypt(
      { key: publicToKeyObject(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: h.node, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
      s,
    );
  } else if (ek.type === TPM_ALG.ECC) {
    ({ seed: s, encrypted: encSeed } = eccSeed(ek, h.node, h.size));
  } else {
    throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'makeCredential supports RSA and ECC EKs only');
  }
  const symKey = kdfa(h.node, s, 'STORAGE', akName, new Uint8Array(0), ek.symmetric.keyBits);
  const plain = new ByteWriter().tpm2b(credential).finish();
  const cipher = createCipheriv(`aes-${ek.symmetric.keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(plain), cipher.final()]);
  const hmacKey = kdfa(h.node, s, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), h.size * 8);
  const outerHmac = createHmac(h.node, hmacKey).update(encIdentity).update(akName).digest();
  const idObject = new ByteWriter().tpm2b(outerHmac).bytes(encIdentity).finish();
  return {
    credentialBlob: new ByteWriter().tpm2b(idObject).finish(),
    secret: new ByteWriter().tpm2b(new Uint8Array(encSeed)).finish(),
  };
}
