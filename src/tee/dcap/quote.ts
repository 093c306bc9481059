import { ByteReader } from '../common/reader.js';
import { EvidenceFormatError } from '../common/errors.js';
import {
  ATT_KEY_TYPE_ECDSA_P256,
  BODY_SGX_ENCLAVE,
  BODY_TD_REPORT10,
  BODY_TD_REPORT15,
  CERT_DATA_PCK_CHAIN,
  CERT_DATA_QE_REPORT,
  ENCLAVE_REPORT_LEN,
  QUOTE_HEADER_LEN,
  TD10_REPORT_LEN,
  TD15_REPORT_LEN,
  TEE_TYPE_SGX,
  TEE_TYPE_TDX,
} from './constants.js';

/**
 * DCAP quote abi: bytes ⇄ typed struct, nothing else (no crypto). Layout per DCAP sgx_quote_3.h / _4.h / _5.h
 * and QVL Quote.cpp. Every length field is checked before use; unknown versions and types are rejected.
 */
export interface DcapQuote {
  version: 3 | 4 | 5;
  attKeyType: number;
  /** 0 = SGX, 0x81 = TDX (v3: always SGX; the field is att_key_data_0 there). */
  teeType: number;
  /** Header bytes 4..8 as read (v3 keeps them opaque for the round-trip). */
  headerTeeField: number;
  /** Header bytes 8..12: v3 qe_svn/pce_svn, v4+ reserved. */
  headerSvnField: Uint8Array;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
  /** 1 SGX enclave report, 2 TD report 1.0, 3 TD report 1.5 (v3/v4 implied by version and tee type). */
  bodyType: 1 | 2 | 3;
  body: Uint8Array;
  /** Header (+ v5 descriptor) + body: the bytes the attestation key signs. */
  signedData: Uint8Array;
  signature: Uint8Array;
  attestKey: Uint8Array;
  qeReport: Uint8Array;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** Inner certification data (type 5: PEM PCK chain). */
  certType: number;
  certData: Uint8Array;
  /**
   * Bytes after the declared signature data: covered by no signature, so ignored, as Intel's QVL and dcap-qvl do
   * (both stop reading at the end of the signature data). The TDX quote library hands quotes out in fixed-size
   * buffers (dcap-qvl's sample TDX v4 quote carries 70 zero bytes): zero padding is normal, anything else is
   * accepted with a warning (`trailingNonZero`).
   */
  trailingBytes: number;
  trailingNonZero: boolean;
}

const BODY_LEN: Record<number, number> = {
  [BODY_SGX_ENCLAVE]: ENCLAVE_REPORT_LEN,
  [BODY_TD_REPORT10]: TD10_REPORT_LEN,
  [BODY_TD_REPORT15]: TD15_REPORT_LEN,
};

function fmt(code: string, msg: string): EvidenceFormatError {
  return new EvidenceFormatError(code, msg);
}

/** Cheap header sniff for auto-detection: never throws. */
export function sniffQuote(b: Uint8Array): { version: number; teeType: number } | undefined {
  if (b.length < QUOTE_HEADER_LEN + 4) return undefined;
  const version = b[0] | (b[1] << 8);
  const akType = b[2] | (b[3] << 8);
  if (version < 3 || version > 5 || akType !== ATT_KEY_TYPE_ECDSA_P256) return undefined;
  const teeType = version === 3 ? TEE_TYPE_SGX : (b[4] | (b[5] << 8) | (b[6] << 16)) + b[7] * 0x1000000;
  if (teeType !== TEE_TYPE_SGX && teeType !== TEE_TYPE_TDX) return undefined;
  return { version, teeType };
}

export function parseQuote(buf: Uint8Array): DcapQuote {
  const r = new ByteReader(buf, 'DCAP quote');
  const version = r.u16le('header.version');
  if (version !== 3 && version !== 4 && version !== 5) {
    throw fmt('UNSUPPORTED_QUOTE_VERSION', `quote version ${version} is not supported (3, 4 or 5)`);
  }
  const attKeyType = r.u16le('header.att_key_type');
  if (attKeyType !== ATT_KEY_TYPE_ECDSA_P256) {
    throw fmt('UNSUPPORTED_AK_TYPE', `attestation key type ${attKeyType} is not supported (only 2, ECDSA-256-with-P-256)`);
  }
  const headerTeeField = r.u32le('header.tee_type');
  const teeType = version === 3 ? TEE_TYPE_SGX : headerTeeField;
  if (teeType !== TEE_TYPE_SGX && teeType !== TEE_TYPE_TDX) {
    throw fmt('UNSUPPORTED_TEE_TYPE', `quote TEE type 0x${teeType.toString(16)} is neither SGX (0) nor TDX (0x81)`);
  }
  const headerSvnField = r.bytes(4, 'header.svn');
  const qeVendorId = r.bytes(16, 'header.qe_vendor_id');
  const userData = r.bytes(20, 'header.user_data');

  let bodyType: 1 | 2 | 3;
  if (version === 5) {
    const t = r.u16le('body_descriptor.type');
    const size = r.u32le('body_descriptor.size');
    if (t !== BODY_SGX_ENCLAVE && t !== BODY_TD_REPORT10 && t !== BODY_TD_REPORT15) {
      throw fmt('UNSUPPORTED_BODY_TYPE', `quote v5 body type ${t} is not supported (1, 2 or 3)`);
    }
    if ((t === BODY_SGX_ENCLAVE) !== (teeType === TEE_TYPE_SGX)) {
      throw fmt('BODY_TYPE_MISMATCH', `quote v5 body type ${t} does not match TEE type 0x${teeType.toString(16)}`);
    }
    if (size !== BODY_LEN[t]) {
      throw fmt('BAD_LENGTH', `quote v5 body size ${size} does not match body type ${t} (${BODY_LEN[t]} bytes)`);
    }
    bodyType = t;
  } else {
    bodyType = teeType === TEE_TYPE_SGX ? BODY_SGX_ENCLAVE : BODY_TD_REPORT10;
    if (version === 3 && teeType !== TEE_TYPE_SGX) throw fmt('UNSUPPORTED_TEE_TYPE', 'quote v3 must be SGX');
  }
  const body = r.bytes(BODY_LEN[bodyType], 'body');
  const signedData = buf.subarray(0, r.offset);

  const sigLen = r.u32le('signature_data_len');
  if (sigLen > r.remaining) {
    throw fmt('TRUNCATED', `quote signature_data_len ${sigLen} exceeds the ${r.remaining} bytes that follow it`);
  }
  const trailingBytes = r.remaining - sigLen;
  const trailingNonZero = buf.subarray(r.offset + sigLen).some((x) => x !== 0);
  const sd = new ByteReader(r.bytes(sigLen, 'signature_data'), 'quote signature data');
  r.skip(trailingBytes, 'trailing bytes');
  const signature = sd.bytes(64, 'signature');
  const attestKey = sd.bytes(64, 'attest_pub_key');

  let inner: ByteReader = sd;
  if (version !== 3) {
    const outerType = sd.u16le('certification_data.type');
    if (outerType !== CERT_DATA_QE_REPORT) {
      throw fmt('UNSUPPORTED_CERT_DATA_TYPE', `quote v${version} outer certification data type ${outerType} is not supported (6)`);
    }
    const outerSize = sd.u32le('certification_data.size');
    if (outerSize !== sd.remaining) {
      throw fmt(
        outerSize > sd.remaining ? 'TRUNCATED' : 'TRAILING_BYTES',
        `QE report certification data size ${outerSize} does not match the ${sd.remaining} bytes that follow it`,
      );
    }
    inner = new ByteReader(sd.bytes(outerSize, 'certification_data'), 'QE report certification data');
  }
  const qeReport = inner.bytes(ENCLAVE_REPORT_LEN, 'qe_report');
  const qeReportSignature = inner.bytes(64, 'qe_report_signature');
  const authLen = inner.u16le('qe_auth_data.size');
  const qeAuthData = inner.bytes(authLen, 'qe_auth_data');
  const certType = inner.u16le('cert_data.type');
  if (certType !== CERT_DATA_PCK_CHAIN) {
    throw fmt('UNSUPPORTED_CERT_DATA_TYPE', `certification data type ${certType} is not supported (5, PCK certificate chain)`);
  }
  const certSize = inner.u32le('cert_data.size');
  if (certSize !== inner.remaining) {
    throw fmt(
      certSize > inner.remaining ? 'TRUNCATED' : 'TRAILING_BYTES',
      `certification data size ${certSize} does not match the ${inner.remaining} bytes that follow it`,
    );
  }
  const certData = inner.bytes(certSize, 'cert_data');
  inner.end();
  sd.end();
  r.end();
  return {
    version,
    attKeyType,
    teeType,
    headerTeeField,
    headerSvnField,
    qeVendorId,
    userData,
    bodyType,
    body,
    signedData,
    signature,
    attestKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    certType,
    certData,
    trailingBytes,
    trailingNonZero,
  };
}

/** Inverse of parseQuote (used by tests and tooling); recomputes every length field. */
export function serializeQuote(q: Omit<DcapQuote, 'signedData' | 'trailingBytes' | 'trailingNonZero'> & { trailingBytes?: number }): Uint8Array {
  const parts: Buffer[] = [];
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  parts.push(u16(q.version), u16(q.attKeyType), u32(q.headerTeeField), Buffer.from(q.headerSvnField));
  parts.push(Buffer.from(q.qeVendorId), Buffer.from(q.userData));
  if (q.version === 5) parts.push(u16(q.bodyType), u32(q.body.length));
  parts.push(Buffer.from(q.body));
  const cert = Buffer.concat([u16(q.certType), u32(q.certData.length), Buffer.from(q.certData)]);
  const qe = Buffer.concat([
    Buffer.from(q.qeReport),
    Buffer.from(q.qeReportSignature),
    u16(q.qeAuthData.length),
    Buffer.from(q.qeAuthData),
    cert,
  ]);
  const sig = Buffer.concat([
    Buffer.from(q.signature),
    Buffer.from(q.attestKey),
    q.version === 3 ? qe : Buffer.concat([u16(CERT_DATA_QE_REPORT), u32(qe.length), qe]),
  ]);
  parts.push(u32(sig.length), sig, Buffer.alloc(q.trailingBytes ?? 0));
  return new Uint8Array(Buffer.concat(parts));
}
