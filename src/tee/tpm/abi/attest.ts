import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { ByteWriter } from './writer.js';
import { TPM_GENERATED_VALUE, TPM_ST } from './constants.js';
import { readPcrSelection, writePcrSelection, type PcrSelection } from './pcrs.js';

export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}

export type Attested =
  | { kind: 'quote'; pcrSelect: PcrSelection[]; pcrDigest: Uint8Array }
  | { kind: 'certify'; name: Uint8Array; qualifiedName: Uint8Array }
  | { kind: 'other'; body: Uint8Array };

/** TPMS_ATTEST (Part 2 §10.12.12), as signed and as `tpm2_quote -m` writes it (no TPM2B size prefix). */
export interface TpmsAttest {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  attested: Attested;
}

const WHAT = 'TPMS_ATTEST';

function tpm2b(r: ByteReader, field: string, max: number): Uint8Array {
  const n = r.u16be(`${field}.size`);
  if (n > max) throw new EvidenceFormatError('TPM_ATTEST_MALFORMED', `${WHAT}: ${field} size ${n} exceeds ${max}`);
  return r.bytes(n, field);
}

export function parseAttest(buf: Uint8Array): TpmsAttest {
  const r = new ByteReader(buf, WHAT);
  const magic = r.u32be('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw new EvidenceFormatError(
      'TPM_BAD_MAGIC',
      `${WHAT}: magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE 0xff544347 (not produced by a TPM)`,
    );
  }
  const type = r.u16be('type');
  const qualifiedSigner = tpm2b(r, 'qualifiedSigner', 2 + 64);
  const extraData = tpm2b(r, 'extraData', 64);
  const clockInfo: ClockInfo = {
    clock: r.u64be('clockInfo.clock'),
    resetCount: r.u32be('clockInfo.resetCount'),
    restartCount: r.u32be('clockInfo.restartCount'),
    safe: false,
  };
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw new EvidenceFormatError('TPM_ATTEST_MALFORMED', `${WHAT}: clockInfo.safe is ${safe}, not a TPMI_YES_NO`);
  clockInfo.safe = safe === 1;
  const firmwareVersion = r.u64be('firmwareVersion');
  let attested: Attested;
  if (type === TPM_ST.ATTEST_QUOTE) {
    const pcrSelect = readPcrSelection(r);
    const pcrDigest = tpm2b(r, 'pcrDigest', 64);
    attested = { kind: 'quote', pcrSelect, pcrDigest };
  } else if (type === TPM_ST.ATTEST_CERTIFY) {
    attested = { kind: 'certify', name: tpm2b(r, 'certify.name', 2 + 64), qualifiedName: tpm2b(r, 'certify.qualifiedName', 2 + 64) };
  } else {
    attested = { kind: 'other', body: r.bytes(r.remaining, 'attested') };
  }
  r.end();
  return { magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested };
}

export function serializeAttest(a: TpmsAttest): Uint8Array {
  const w = new ByteWriter()
    .u32(a.magic)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion);
  const at = a.attested;
  if (at.kind === 'quote') writePcrSelection(w, at.pcrSelect).tpm2b(at.pcrDigest);
  else if (at.kind === 'certify') w.tpm2b(at.name).tpm2b(at.qualifiedName);
  else w.bytes(at.body);
  return w.finish();
}

/** Accepts a TPM2B_ATTEST (size-prefixed, as the TPM returns it) as well as the bare TPMS_ATTEST. */
export function unwrapAttest(buf: Uint8Array): Uint8Array {
  if (buf.length >= 6 && (buf[0] << 8) + buf[1] === buf.length - 2) {
    const m = (buf[2] << 24) | (buf[3] << 16) | (buf[4] << 8) | buf[5];
    if (m >>> 0 === TPM_GENERATED_VALUE) return buf.subarray(2);
  }
  return buf;
}
