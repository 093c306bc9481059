import * as nodeCrypto from 'node:crypto';
import { VerificationError } from '../../common/errors.js';
import { bytesEqual, toHex } from '../../common/hex.js';
import { algName, hashAlgById } from '../abi/constants.js';
import { flatten, parsePcrsFile, type PcrSelection, type PcrValues } from '../abi/pcrs.js';

/** One-shot crypto.hash where the runtime has it (Node ≥ 20.12: cheaper than a Hash object), else createHash. */
export function digestOf(alg: string, data: Uint8Array): Uint8Array {
  if (typeof nodeCrypto.hash === 'function') return new Uint8Array(nodeCrypto.hash(alg, data, 'buffer'));
  return new Uint8Array(nodeCrypto.createHash(alg).update(data).digest());
}

/** The outcome of "these PCR values hash to the quoted pcrDigest": the values and their claims. */
export interface PcrCheck {
  values: PcrValues;
  /** `pcr<bank>_<n>` → hex. Shared by cache hits: callers copy it before handing it out. */
  measurements: Readonly<Record<string, string>>;
  /** raw.pcrSelection of the claims, deep-frozen: cache hits share it. */
  selectionRaw: readonly { readonly bank: string; readonly pcrs: readonly number[] }[];
}

export function selectionRaw(sel: PcrSelection[]): PcrCheck['selectionRaw'] {
  return Object.freeze(sel.map((s) => Object.freeze({ bank: hashAlgById(s.hash)?.name ?? algName(s.hash), pcrs: Object.freeze([...s.pcrs]) })));
}

interface Entry {
  /** A private copy of the PCR file: the caller's buffer may change after the call. */
  pcrs: Uint8Array;
  sigHash: number;
  sel: PcrSelection[];
  check: PcrCheck;
}

/** memcmp: PCR files are public, so no constant-time compare is needed here (bytesEqual is a JS loop). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameSelection(a: PcrSelection[], b: PcrSelection[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i].pcrs;
    const y = b[i].pcrs;
    if (a[i].hash !== b[i].hash || x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/**
 * Memo of PCR checks, keyed by the signed pcrDigest and matched on everything the check reads: the exact PCR
 * file bytes, the quote's selection and the signature hash. A hit therefore has the same result a recomputation
 * would have (fleets re-attest with unchanged PCRs, so parsing, hashing and hex-encoding them again is waste).
 * Only successful checks are stored. Bounded, per verifier instance.
 */
export class PcrCheckCache {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly max = 256) {}

  lookup(digestHex: string, sigHash: number, sel: PcrSelection[], pcrs: Uint8Array): PcrCheck | undefined {
    const e = this.entries.get(digestHex);
    if (!e || e.sigHash !== sigHash || !sameSelection(e.sel, sel) || !sameBytes(e.pcrs, pcrs)) return undefined;
    return e.check;
  }

  store(digestHex: string, sigHash: number, sel: PcrSelection[], pcrs: Uint8Array, check: PcrCheck): void {
    if (!this.entries.has(digestHex) && this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(digestHex, { pcrs, sigHash, sel, check });
  }
}

/**
 * Parses the PCR file against the quote's selection, recomputes H_sig(selected values in selection order) and
 * compares it with the quoted pcrDigest; throws TPM_PCR_DIGEST_MISMATCH otherwise.
 */
export function checkPcrs(
  pcrsFile: Uint8Array,
  sel: PcrSelection[],
  sigHash: number,
  pcrDigest: Uint8Array,
  digestHex: string,
  cache?: PcrCheckCache,
): PcrCheck {
  const hit = cache?.lookup(digestHex, sigHash, sel, pcrsFile);
  if (hit) return hit;
  // Parse a private copy: the values (views into it) may be kept by the cache.
  const own = cache ? new Uint8Array(pcrsFile) : pcrsFile;
  const values = parsePcrsFile(own, sel);
  const all = Buffer.concat(flatten(sel, values));
  const h = hashAlgById(sigHash);
  if (!h) throw new VerificationError('TPM_UNSUPPORTED_ALG', `signature hash ${algName(sigHash)} is not supported`);
  const digest = digestOf(h.node, all);
  if (!bytesEqual(digest, pcrDigest)) {
    throw new VerificationError('TPM_PCR_DIGEST_MISMATCH', `the PCR values do not hash to the quoted pcrDigest ${digestHex} (got ${toHex(digest)})`);
  }
  // One hex conversion for all values, then slices.
  const hex = all.toString('hex');
  const measurements: Record<string, string> = {};
  let o = 0;
  for (const s of sel) {
    const alg = hashAlgById(s.hash)!;
    const prefix = `pcr${alg.name}_`;
    const n = alg.size * 2;
    for (const p of s.pcrs) {
      measurements[prefix + p] = hex.slice(o, o + n);
      o += n;
    }
  }
  const check: PcrCheck = { values, measurements, selectionRaw: selectionRaw(sel) };
  cache?.store(digestHex, sigHash, sel, own, check);
  return check;
}
