import { constants, verify as cryptoVerify } from 'node:crypto';
import { EvidenceFormatError, VerificationError } from '../../common/errors.js';
import { TPM_ALG, algName, hashAlgById } from '../abi/constants.js';
import { curveInfo, type AkPublic } from '../abi/public.js';
import { parseDerEcdsa, parseSignatureFile, type TpmtSignature } from '../abi/signature.js';

/** Turns a signature file into a TPMT_SIGNATURE; `-f plain` carries no scheme, so the AK's scheme fills it in. */
export function resolveSignature(file: Uint8Array, ak: AkPublic): TpmtSignature {
  const parsed = parseSignatureFile(file);
  if (parsed.kind === 'tpmt') return parsed.sig;
  const keyType = ak.key.asymmetricKeyType;
  const scheme = ak.tpmPublic?.scheme;
  const hash = scheme?.hash ?? TPM_ALG.SHA256;
  if (keyType === 'rsa') {
    const sigAlg = scheme?.alg === TPM_ALG.RSAPSS ? TPM_ALG.RSAPSS : TPM_ALG.RSASSA;
    return { sigAlg, hash, sig: parsed.bytes };
  }
  if (keyType === 'ec') {
    const { r, s } = parseDerEcdsa(parsed.bytes);
    return { sigAlg: TPM_ALG.ECDSA, hash, r, s };
  }
  throw new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', `plain signature for an unsupported AK key type ${keyType}`);
}

function pad(b: Uint8Array, n: number): Uint8Array {
  if (b.length > n) throw new VerificationError('TPM_SIGNATURE_INVALID', `ECDSA signature component is ${b.length} bytes, longer than the curve's ${n}`);
  if (b.length === n) return b;
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

const EC_SIZES: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/** Checks `sig` over `message` with the AK; any mismatch of scheme and key type is a rejection, not a crash. */
export function verifyTpmSignature(message: Uint8Array, sig: TpmtSignature, ak: AkPublic, what: string): void {
  const h = hashAlgById(sig.hash);
  if (!h || h.id === TPM_ALG.SHA1) {
    throw new VerificationError('TPM_UNSUPPORTED_ALG', `${what} signature hash ${algName(sig.hash)} is not accepted (SHA-256/384/512)`);
  }
  const keyType = (ak.keyType ??= ak.key.asymmetricKeyType ?? 'unknown');
  let ok: boolean;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      if (keyType !== 'ec') throw new VerificationError('TPM_SIGNATURE_INVALID', `${what} is an ECDSA signature but the AK is ${keyType}`);
      const n = (ak.ecSize ??= EC_SIZES[ak.key.asymmetricKeyDetails?.namedCurve ?? ''] ?? curveInfo(ak.tpmPublic?.type === TPM_ALG.ECC ? ak.tpmPublic.curveId : 0)?.size ?? 0);
      if (!n) throw new VerificationError('TPM_UNSUPPORTED_ALG', `${what}: AK curve ${ak.key.asymmetricKeyDetails?.namedCurve} is not supported`);
      const rs = new Uint8Array(2 * n);
      rs.set(pad(sig.r, n), 0);
      rs.set(pad(sig.s, n), n);
      ok = cryptoVerify(h.node, message, { key: ak.key, dsaEncoding: 'ieee-p1363' }, rs);
    } else {
      if (keyType !== 'rsa') throw new VerificationError('TPM_SIGNATURE_INVALID', `${what} is an RSA signature but the AK is ${keyType}`);
      // PSS: TPMs use salt = hash length (or the maximum on some older parts): AUTO accepts both.
      const opts =
        sig.sigAlg === TPM_ALG.RSAPSS
          ? { key: ak.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
          : { key: ak.key, padding: constants.RSA_PKCS1_PADDING };
      ok = cryptoVerify(h.node, message, opts, sig.sig);
    }
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    ok = false;
  }
  if (!ok) throw new VerificationError('TPM_SIGNATURE_INVALID', `${what} signature (${algName(sig.sigAlg)}/${h.name}) does not verify with the AK`);
}
