import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { ByteWriter } from './writer.js';
import { TPM_ALG, algName, hashAlgById } from './constants.js';

/** TPMT_SIGNATURE (Part 2 §11.3.4) for the schemes a quote can carry. */
export type TpmtSignature =
  | { sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; hash: number; sig: Uint8Array }
  | { sigAlg: typeof TPM_ALG.ECDSA; hash: number; r: Uint8Array; s: Uint8Array };

const WHAT = 'TPMT_SIGNATURE';

export function readSignature(r: ByteReader): TpmtSignature {
  const sigAlg = r.u16be('sigAlg');
  if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS && sigAlg !== TPM_ALG.ECDSA) {
    throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: signature algorithm ${algName(sigAlg)} is not supported (RSASSA, RSAPSS, ECDSA)`);
  }
  const hash = r.u16be('hash');
  if (!hashAlgById(hash)) throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${WHAT}: hash ${algName(hash)} is not supported`);
  if (sigAlg === TPM_ALG.ECDSA) {
    const rn = r.u16be('signatureR.size');
    if (rn > 66) throw new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', `${WHAT}: ECDSA R is ${rn} bytes`);
    const rr = r.bytes(rn, 'signatureR');
    const sn = r.u16be('signatureS.size');
    if (sn > 66) throw new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', `${WHAT}: ECDSA S is ${sn} bytes`);
    return { sigAlg, hash, r: rr, s: r.bytes(sn, 'signatureS') };
  }
  const n = r.u16be('sig.size');
  if (n > 512) throw new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', `${WHAT}: RSA signature is ${n} bytes`);
  return { sigAlg, hash, sig: r.bytes(n, 'sig') };
}

export function parseSignature(buf: Uint8Array): TpmtSignature {
  const r = new ByteReader(buf, WHAT);
  const s = readSignature(r);
  r.end();
  return s;
}

export function serializeSignature(s: TpmtSignature): Uint8Array {
  const w = new ByteWriter().u16(s.sigAlg).u16(s.hash);
  if (s.sigAlg === TPM_ALG.ECDSA) w.tpm2b(s.r).tpm2b(s.s);
  else w.tpm2b(s.sig);
  return w.finish();
}

/** What the signature file held: a marshaled TPMT_SIGNATURE (tpm2_quote -s default) or `-f plain` bytes. */
export type SignatureFile = { kind: 'tpmt'; sig: TpmtSignature } | { kind: 'plain'; bytes: Uint8Array };

export function parseSignatureFile(buf: Uint8Array): SignatureFile {
  if (buf.length === 0) throw new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', 'the signature file is empty');
  const alg = buf.length >= 2 ? (buf[0] << 8) | buf[1] : -1;
  if (alg === TPM_ALG.RSASSA || alg === TPM_ALG.RSAPSS || alg === TPM_ALG.ECDSA) {
    try {
      return { kind: 'tpmt', sig: parseSignature(buf) };
    } catch (e) {
      // A raw RSA signature may start with these bytes by chance; only a clean TPMT parse counts as one.
      if (buf.length < 64) throw e;
    }
  }
  return { kind: 'plain', bytes: buf };
}

/** DER ECDSA-Sig-Value → (r, s) big-endian unsigned, for tpm2_quote -f plain on ECC keys. */
export function parseDerEcdsa(der: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const bad = (why: string) => new EvidenceFormatError('TPM_SIGNATURE_MALFORMED', `ECDSA signature is not DER ECDSA-Sig-Value: ${why}`);
  const r = new ByteReader(der, 'ECDSA-Sig-Value');
  if (r.u8('SEQUENCE') !== 0x30) throw bad('no SEQUENCE');
  let len = r.u8('length');
  if (len === 0x81) len = r.u8('length');
  else if (len > 0x80) throw bad('bad length');
  if (len !== r.remaining) throw bad('length mismatch');
  const int = (f: string) => {
    if (r.u8(f) !== 0x02) throw bad(`${f} is not an INTEGER`);
    const n = r.u8(`${f}.length`);
    if (n === 0 || n > 67) throw bad(`${f} length ${n}`);
    let v = r.bytes(n, f);
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    return v;
  };
  const rr = int('r');
  const ss = int('s');
  r.end();
  return { r: rr, s: ss };
}
