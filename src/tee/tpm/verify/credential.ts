import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { UsageError } from '../../common/errors.js';
import { TPM_ALG, hashAlgById } from '../abi/constants.js';
import { publicToKeyObject, type TpmtPublic } from '../abi/public.js';
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

export interface Credential {
  /** TPM2B_ID_OBJECT for TPM2_ActivateCredential (what tpm2_makecredential writes after its header). */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP-encrypted to the EK with label "IDENTITY". */
  secret: Uint8Array;
}

/**
 * TPM2_MakeCredential done in software by the verifier (Part 1 §24): wraps `credential` so that only the TPM
 * holding the EK can recover it, and only for the key named `akName` loaded in that TPM. A TPM that returns the
 * credential from ActivateCredential thereby proves the AK lives beside the (certified) EK. RSA EKs only.
 */
export function makeCredential(ek: TpmtPublic, akName: Uint8Array, credential: Uint8Array, seed?: Uint8Array): Credential {
  if (ek.type !== TPM_ALG.RSA) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'makeCredential supports RSA EKs only');
  const h = hashAlgById(ek.nameAlg);
  if (!h) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'the EK nameAlg is not supported');
  if (ek.symmetric.alg !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB || !ek.symmetric.keyBits) {
    throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', 'the EK is not an AES-CFB storage key');
  }
  if (credential.length > h.size) throw new UsageError('TPM_CREDENTIAL_UNSUPPORTED', `the credential is longer than ${h.size} bytes`);
  const s = seed ?? new Uint8Array(randomBytes(h.size));
  const encSeed = publicEncrypt(
    { key: publicToKeyObject(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: h.node, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
    s,
  );
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
