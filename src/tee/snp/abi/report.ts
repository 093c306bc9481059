import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { type ProductLine, productFromCpuid } from './product.js';
import { decodeTcb, layoutFor, type TcbLayout, type TcbVersion } from './tcb.js';

/**
 * SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP ABI spec 56860, "ATTESTATION_REPORT Structure"; offsets cross-checked
 * with go-sev-guest abi/abi.go and virtee/sev snp.rs). 1184 bytes, little-endian. Versions 2, 3 (4 has the v3
 * layout in both reference implementations) and 5. Pure parsing: no signature or policy decisions here, except that
 * reserved-must-be-zero bytes and undefined enumerations are rejected so that nothing unexplained is signed off.
 */
export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, 0x2A0). */
export const SIGNED_LENGTH = 0x2a0;
export const SIGNATURE_OFFSET = 0x2a0;
/** ECDSA P-384 with SHA-384, the only algorithm AMD defines for reports. */
export const SIG_ALGO_ECDSA_P384_SHA384 = 1;

export type SigningKey = 'vcek' | 'vlek' | 'none';
const SIGNING_KEYS: Record<number, SigningKey> = { 0: 'vcek', 1: 'vlek', 7: 'none' };

export interface GuestPolicy {
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export interface PlatformInfo {
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

export interface SnpReport {
  version: number;
  guestSvn: number;
  /** The u64 as read, kept for exact serialisation; `policyBits` is its decoding. */
  policy: bigint;
  policyBits: GuestPolicy;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  /** Product that selected the TCB layout: from CPUID (v3+) or the caller (v2); undefined = not known. */
  product?: ProductLine;
  tcbLayout: TcbLayout;
  currentTcb: TcbVersion;
  platformInfo: bigint;
  platformInfoBits: PlatformInfo;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: SigningKey;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: TcbVersion;
  /** v3+ only. */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  committedTcb: TcbVersion;
  currentBuild: number;
  currentMinor: number;
  currentMajor: number;
  committedBuild: number;
  committedMinor: number;
  committedMajor: number;
  launchTcb: TcbVersion;
  /** v5 only. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  /** Little-endian, 72 bytes each, exactly as in the report. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
}

export interface ParseOptions {
  /** Product for v2 reports (they carry no CPUID); ignored when the report names its own CPUID. */
  productLine?: ProductLine;
}

function mustBeZero(b: Uint8Array, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) {
    if (b[i] !== 0) {
      throw new EvidenceFormatError(
        'RESERVED_NONZERO',
        `SEV-SNP report reserved bytes 0x${from.toString(16)}..0x${to.toString(16)} (${what}) must be zero; byte 0x${i.toString(16)} is 0x${b[i].toString(16)}`,
      );
    }
  }
}

function invalid(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('REPORT_FIELD_INVALID', `SEV-SNP report ${msg}`);
}

const bit = (v: bigint, i: number) => ((v >> BigInt(i)) & 1n) === 1n;

/** go-sev-guest ParseSnpPolicy: bit 17 is reserved and must be one, bits 63:26 must be zero. */
export function decodePolicy(p: bigint): GuestPolicy {
  if (!bit(p, 17)) throw invalid('guest policy bit 17 is reserved and must be 1');
  if (p >> 26n !== 0n) throw new EvidenceFormatError('RESERVED_NONZERO', `SEV-SNP guest policy 0x${p.toString(16)} sets reserved bits 63:26`);
  return {
    abiMinor: Number(p & 0xffn),
    abiMajor: Number((p >> 8n) & 0xffn),
    smt: bit(p, 16),
    migrateMa: bit(p, 18),
    debug: bit(p, 19),
    singleSocket: bit(p, 20),
    cxlAllow: bit(p, 21),
    memAes256Xts: bit(p, 22),
    raplDis: bit(p, 23),
    ciphertextHiding: bit(p, 24),
    pageSwapDisable: bit(p, 25),
  };
}

/** go-sev-guest ParseSnpPlatformInfo; bit 6 and bits 63:8 are reserved. */
export function decodePlatformInfo(v: bigint): PlatformInfo {
  if (bit(v, 6) || v >> 8n !== 0n) {
    throw new EvidenceFormatError('RESERVED_NONZERO', `SEV-SNP platform info 0x${v.toString(16)} sets reserved bits (6, 63:8)`);
  }
  return {
    smtEnabled: bit(v, 0),
    tsmeEnabled: bit(v, 1),
    eccEnabled: bit(v, 2),
    raplDisabled: bit(v, 3),
    ciphertextHidingEnabled: bit(v, 4),
    aliasCheckComplete: bit(v, 5),
    tioEnabled: bit(v, 7),
  };
}

/** Report layout generation: 2, 3 (also 4) or 5. */
function layoutVersion(version: number): 2 | 3 | 5 {
  if (version === 2) return 2;
  if (version === 3 || version === 4) return 3;
  if (version === 5) return 5;
  throw new EvidenceFormatError(
    'UNSUPPORTED_REPORT_VERSION',
    `SEV-SNP report version ${version} is not supported (supported: 2, 3, 4, 5)`,
  );
}

export function parseReport(bytes: Uint8Array, opts: ParseOptions = {}): SnpReport {
  if (bytes.length < REPORT_SIZE) {
    throw new EvidenceFormatError('TRUNCATED', `SEV-SNP report is truncated: ${bytes.length} bytes, expected ${REPORT_SIZE}`);
  }
  if (bytes.length > REPORT_SIZE) {
    throw new EvidenceFormatError('TRAILING_BYTES', `SEV-SNP report has ${bytes.length - REPORT_SIZE} unexpected trailing bytes (expected ${REPORT_SIZE})`);
  }
  const r = new ByteReader(bytes, 'SEV-SNP report');
  const version = r.u32le('VERSION');
  const gen = layoutVersion(version);
  const guestSvn = r.u32le('GUEST_SVN');
  const policy = r.u64le('POLICY');
  const policyBits = decodePolicy(policy);
  const familyId = r.bytes(16, 'FAMILY_ID');
  const imageId = r.bytes(16, 'IMAGE_ID');
  const vmpl = r.u32le('VMPL');
  const signatureAlgo = r.u32le('SIGNATURE_ALGO');
  const currentTcbRaw = r.u64le('CURRENT_TCB');
  const platformInfo = r.u64le('PLATFORM_INFO');
  const platformInfoBits = decodePlatformInfo(platformInfo);
  const signer = r.u32le('SIGNER_INFO');
  if (signer >>> 5 !== 0) throw new EvidenceFormatError('RESERVED_NONZERO', `SEV-SNP signer info 0x${signer.toString(16)} sets reserved bits 31:5`);
  const signingKey = SIGNING_KEYS[(signer >>> 2) & 7];
  if (!signingKey) throw invalid(`signing key selector ${(signer >>> 2) & 7} is reserved (0 = VCEK, 1 = VLEK, 7 = none)`);
  mustBeZero(bytes, 0x4c, 0x50, 'after signer info');
  r.skip(4, 'reserved 0x4C');
  const reportData = r.bytes(64, 'REPORT_DATA');
  const measurement = r.bytes(48, 'MEASUREMENT');
  const hostData = r.bytes(32, 'HOST_DATA');
  const idKeyDigest = r.bytes(48, 'ID_KEY_DIGEST');
  const authorKeyDigest = r.bytes(48, 'AUTHOR_KEY_DIGEST');
  const reportId = r.bytes(32, 'REPORT_ID');
  const reportIdMa = r.bytes(32, 'REPORT_ID_MA');
  const reportedTcbRaw = r.u64le('REPORTED_TCB');
  let cpuid: SnpReport['cpuid'];
  if (gen >= 3) {
    cpuid = { family: r.u8('CPUID_FAM_ID'), model: r.u8('CPUID_MOD_ID'), stepping: r.u8('CPUID_STEP') };
    mustBeZero(bytes, 0x18b, 0x1a0, 'after CPUID');
    r.skip(0x1a0 - 0x18b, 'reserved 0x18B');
  } else {
    mustBeZero(bytes, 0x188, 0x1a0, 'v2 reserved after REPORTED_TCB');
    r.skip(0x1a0 - 0x188, 'reserved 0x188');
  }
  const chipId = r.bytes(64, 'CHIP_ID');
  const committedTcbRaw = r.u64le('COMMITTED_TCB');
  const currentBuild = r.u8('CURRENT_BUILD');
  const currentMinor = r.u8('CURRENT_MINOR');
  const currentMajor = r.u8('CURRENT_MAJOR');
  mustBeZero(bytes, 0x1eb, 0x1ec, 'after CURRENT_MAJOR');
  r.skip(1, 'reserved 0x1EB');
  const committedBuild = r.u8('COMMITTED_BUILD');
  const committedMinor = r.u8('COMMITTED_MINOR');
  const committedMajor = r.u8('COMMITTED_MAJOR');
  mustBeZero(bytes, 0x1ef, 0x1f0, 'after COMMITTED_MAJOR');
  r.skip(1, 'reserved 0x1EF');
  const launchTcbRaw = r.u64le('LAUNCH_TCB');
  let launchMitVector: bigint | undefined;
  let currentMitVector: bigint | undefined;
  if (gen >= 5) {
    launchMitVector = r.u64le('LAUNCH_MIT_VECTOR');
    currentMitVector = r.u64le('CURRENT_MIT_VECTOR');
  } else {
    mustBeZero(bytes, 0x1f8, 0x208, 'mitigation vectors exist only from version 5');
    r.skip(0x10, 'reserved 0x1F8');
  }
  mustBeZero(bytes, 0x208, SIGNATURE_OFFSET, 'before SIGNATURE');
  r.skip(SIGNATURE_OFFSET - 0x208, 'reserved 0x208');
  const signatureR = r.bytes(72, 'SIGNATURE.R');
  const signatureS = r.bytes(72, 'SIGNATURE.S');
  mustBeZero(bytes, 0x330, REPORT_SIZE, 'rest of SIGNATURE');
  r.skip(REPORT_SIZE - 0x330, 'reserved signature tail');
  r.end();

  if (vmpl > 3 && vmpl !== 0xffffffff) throw invalid(`VMPL ${vmpl} is out of range (0..3, or 0xFFFFFFFF for a host-requested report)`);
  const product = cpuid ? productFromCpuid(cpuid.family, cpuid.model) : opts.productLine;
  const tcbLayout = layoutFor(product);
  return {
    version,
    guestSvn,
    policy,
    policyBits,
    familyId,
    imageId,
    vmpl,
    signatureAlgo,
    product,
    tcbLayout,
    currentTcb: decodeTcb(currentTcbRaw, tcbLayout),
    platformInfo,
    platformInfoBits,
    authorKeyEn: (signer & 1) === 1,
    maskChipKey: (signer & 2) === 2,
    signingKey,
    reportData,
    measurement,
    hostData,
    idKeyDigest,
    authorKeyDigest,
    reportId,
    reportIdMa,
    reportedTcb: decodeTcb(reportedTcbRaw, tcbLayout),
    cpuid,
    chipId,
    committedTcb: decodeTcb(committedTcbRaw, tcbLayout),
    currentBuild,
    currentMinor,
    currentMajor,
    committedBuild,
    committedMinor,
    committedMajor,
    launchTcb: decodeTcb(launchTcbRaw, tcbLayout),
    launchMitVector,
    currentMitVector,
    signatureR,
    signatureS,
  };
}

/** Re-decodes every TCB field with another layout (v2 reports whose product is learnt from the VCEK). */
export function withLayout(rep: SnpReport, product: ProductLine): SnpReport {
  const layout = layoutFor(product);
  const re = (t: TcbVersion) => decodeTcb(BigInt(`0x${t.raw}`), layout);
  return {
    ...rep,
    product,
    tcbLayout: layout,
    currentTcb: re(rep.currentTcb),
    reportedTcb: re(rep.reportedTcb),
    committedTcb: re(rep.committedTcb),
    launchTcb: re(rep.launchTcb),
  };
}

function signerInfo(rep: SnpReport): number {
  const sel = rep.signingKey === 'vcek' ? 0 : rep.signingKey === 'vlek' ? 1 : 7;
  return (rep.authorKeyEn ? 1 : 0) | (rep.maskChipKey ? 2 : 0) | (sel << 2);
}

/** Exact inverse of parseReport for every report it accepts (reserved bytes are written as zero). */
export function serializeReport(rep: SnpReport): Uint8Array {
  const out = new Uint8Array(REPORT_SIZE);
  const dv = new DataView(out.buffer);
  const u32 = (o: number, v: number) => dv.setUint32(o, v >>> 0, true);
  const u64 = (o: number, v: bigint) => dv.setBigUint64(o, BigInt.asUintN(64, v), true);
  const tcb = (o: number, t: TcbVersion) => u64(o, BigInt(`0x${t.raw}`));
  const put = (o: number, b: Uint8Array, n: number) => {
    if (b.length !== n) throw new TypeError(`field at 0x${o.toString(16)} must be ${n} bytes, got ${b.length}`);
    out.set(b, o);
  };
  const gen = layoutVersion(rep.version);
  u32(0x000, rep.version);
  u32(0x004, rep.guestSvn);
  u64(0x008, rep.policy);
  put(0x010, rep.familyId, 16);
  put(0x020, rep.imageId, 16);
  u32(0x030, rep.vmpl);
  u32(0x034, rep.signatureAlgo);
  tcb(0x038, rep.currentTcb);
  u64(0x040, rep.platformInfo);
  u32(0x048, signerInfo(rep));
  put(0x050, rep.reportData, 64);
  put(0x090, rep.measurement, 48);
  put(0x0c0, rep.hostData, 32);
  put(0x0e0, rep.idKeyDigest, 48);
  put(0x110, rep.authorKeyDigest, 48);
  put(0x140, rep.reportId, 32);
  put(0x160, rep.reportIdMa, 32);
  tcb(0x180, rep.reportedTcb);
  if (gen >= 3 && rep.cpuid) {
    out[0x188] = rep.cpuid.family;
    out[0x189] = rep.cpuid.model;
    out[0x18a] = rep.cpuid.stepping;
  }
  put(0x1a0, rep.chipId, 64);
  tcb(0x1e0, rep.committedTcb);
  out[0x1e8] = rep.currentBuild;
  out[0x1e9] = rep.currentMinor;
  out[0x1ea] = rep.currentMajor;
  out[0x1ec] = rep.committedBuild;
  out[0x1ed] = rep.committedMinor;
  out[0x1ee] = rep.committedMajor;
  tcb(0x1f0, rep.launchTcb);
  if (gen >= 5) {
    u64(0x1f8, rep.launchMitVector ?? 0n);
    u64(0x200, rep.currentMitVector ?? 0n);
  }
  put(0x2a0, rep.signatureR, 72);
  put(0x2e8, rep.signatureS, 72);
  return out;
}
