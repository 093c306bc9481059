import { createRequire } from 'node:module';
import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { fromHex } from '../../common/hex.js';
import { ByteWriter } from './writer.js';
import { hashAlgById, hashAlgByName, algName } from './constants.js';

/** The YAML parser is loaded on first use (only the tpm2_quote -o YAML form needs it), keeping `coffer verify` light. */
const require = createRequire(import.meta.url);
const parseYaml = (text: string, o: { schema: 'failsafe' }): unknown => (require('yaml') as typeof import('yaml')).parse(text, o);

/** One bank of a TPML_PCR_SELECTION: the hash algorithm and the selected PCR indices (ascending). */
export interface PcrSelection {
  hash: number;
  /** Bytes of the select bitmap as marshaled (3 for 24 PCRs); kept so serialize() round-trips. */
  sizeofSelect: number;
  pcrs: number[];
}

/** PCR values by bank (TPM_ALG_ID) then index. */
export type PcrValues = Map<number, Map<number, Uint8Array>>;

const MAX_BANKS = 16;
const MAX_SELECT = 32;

function fmt(what: string, msg: string): EvidenceFormatError {
  return new EvidenceFormatError('TPM_PCRS_MALFORMED', `${what}: ${msg}`);
}

function bitsToPcrs(select: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < select.length * 8; i++) if (select[i >> 3] & (1 << (i & 7))) out.push(i);
  return out;
}

function pcrsToBits(pcrs: number[], sizeofSelect: number): Uint8Array {
  const b = new Uint8Array(sizeofSelect);
  for (const p of pcrs) b[p >> 3] |= 1 << (p & 7);
  return b;
}

/** TPML_PCR_SELECTION, TPM (big-endian) marshaling. */
export function readPcrSelection(r: ByteReader): PcrSelection[] {
  const count = r.u32be('TPML_PCR_SELECTION.count');
  if (count > MAX_BANKS) throw fmt('TPML_PCR_SELECTION', `count ${count} exceeds ${MAX_BANKS} banks`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    // Constant field names: this runs on every quote, and a TRUNCATED error names the offset anyway.
    const hash = r.u16be('pcrSelections[].hash');
    const sizeofSelect = r.u8('pcrSelections[].sizeofSelect');
    if (sizeofSelect > MAX_SELECT) throw fmt('TPML_PCR_SELECTION', `sizeofSelect ${sizeofSelect} is too large`);
    out.push({ hash, sizeofSelect, pcrs: bitsToPcrs(r.bytes(sizeofSelect, 'pcrSelections[].pcrSelect')) });
  }
  return out;
}

export function writePcrSelection(w: ByteWriter, sel: PcrSelection[]): ByteWriter {
  w.u32(sel.length);
  for (const s of sel) {
    if (s.pcrs.some((p) => p >= s.sizeofSelect * 8)) throw new RangeError('PCR index beyond sizeofSelect');
    w.u16(s.hash).u8(s.sizeofSelect).bytes(pcrsToBits(s.pcrs, s.sizeofSelect));
  }
  return w;
}

/** Selection helper for callers: {sha256: [0,1,2]} → PcrSelection[] (sizeofSelect 3). */
export function selection(banks: Array<[number, number[]]>): PcrSelection[] {
  return banks.map(([hash, pcrs]) => ({ hash, sizeofSelect: 3, pcrs: [...pcrs].sort((a, b) => a - b) }));
}

/** TPML_DIGEST (big-endian): count u32 then TPM2B_DIGEST×count. */
export function readDigestList(r: ByteReader): Uint8Array[] {
  const count = r.u32be('TPML_DIGEST.count');
  if (count > 8) throw fmt('TPML_DIGEST', `count ${count} exceeds 8`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const n = r.u16be(`digests[${i}].size`);
    if (n > 64) throw fmt('TPML_DIGEST', `digest ${i} size ${n} exceeds 64`);
    out.push(r.bytes(n, `digests[${i}].buffer`));
  }
  return out;
}

export function writeDigestList(w: ByteWriter, digests: Uint8Array[]): ByteWriter {
  w.u32(digests.length);
  for (const d of digests) w.tpm2b(d);
  return w;
}

/** Assigns a flat digest list to the selection in TPM order (bank by bank, ascending index). */
export function assignDigests(sel: PcrSelection[], digests: Uint8Array[], what: string): PcrValues {
  const out: PcrValues = new Map();
  let k = 0;
  for (const s of sel) {
    const alg = hashAlgById(s.hash);
    if (!alg) throw new EvidenceFormatError('TPM_UNSUPPORTED_ALG', `${what}: PCR bank ${algName(s.hash)} is not supported`);
    const bank = out.get(s.hash) ?? new Map<number, Uint8Array>();
    out.set(s.hash, bank);
    for (const p of s.pcrs) {
      const d = digests[k++];
      if (!d) throw fmt(what, `holds ${digests.length} digests but the selection names more PCRs`);
      if (d.length !== alg.size) throw fmt(what, `PCR ${alg.name}:${p} is ${d.length} bytes, expected ${alg.size}`);
      bank.set(p, d);
    }
  }
  if (k !== digests.length) throw fmt(what, `holds ${digests.length} digests but the selection names ${k} PCRs`);
  return out;
}

/**
 * tpm2-tools `-F serialized` (the tpm2_quote -o default in 5.x): a little-endian host dump of the C structs
 * TPML_PCR_SELECTION {u32 count; TPMS_PCR_SELECTION[16] of 8 bytes (hash u16, sizeofSelect u8, pcrSelect[4],
 * pad)}, then u32 n, then n × TPML_DIGEST {u32 count; TPM2B_DIGEST[8] of 66 bytes (size u16, buffer[64])}.
 * (tpm2-tools lib/pcr.c pcr_fwrite_serialized; checked against tpm2_quote 5.4 output.)
 */
const SER_SEL = 4 + 16 * 8;
const SER_DIGESTS = 4 + 8 * 66;

function looksSerialized(b: Uint8Array): boolean {
  if (b.length < SER_SEL + 4 || (b.length - SER_SEL - 4) % SER_DIGESTS !== 0) return false;
  const count = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
  return count >= 1 && count <= 16;
}

function parseSerialized(b: Uint8Array): { selection: PcrSelection[]; values: PcrValues } {
  const what = 'PCR file (tpm2-tools serialized)';
  // looksSerialized() fixed the length to the exact struct layout, so direct reads below stay in bounds.
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = dv.getUint32(0, true);
  const sel: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const o = 4 + i * 8;
    const sizeofSelect = b[o + 2];
    if (sizeofSelect > 4) throw fmt(what, `sizeofSelect ${sizeofSelect} exceeds 4`);
    sel.push({ hash: dv.getUint16(o, true), sizeofSelect, pcrs: bitsToPcrs(b.subarray(o + 3, o + 3 + sizeofSelect)) });
  }
  const lists = dv.getUint32(SER_SEL, true);
  if (SER_SEL + 4 + lists * SER_DIGESTS !== b.length) throw fmt(what, `declares ${lists} digest lists but holds ${b.length - SER_SEL - 4} bytes`);
  const digests: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) {
    const base = SER_SEL + 4 + l * SER_DIGESTS;
    const n = dv.getUint32(base, true);
    if (n > 8) throw fmt(what, `digest list ${l} count ${n} exceeds 8`);
    for (let i = 0; i < n; i++) {
      const o = base + 4 + i * 66;
      const size = dv.getUint16(o, true);
      if (size > 64) throw fmt(what, `digest size ${size} exceeds 64`);
      digests.push(b.subarray(o + 2, o + 2 + size));
    }
  }
  return { selection: sel, values: assignDigests(sel, digests, what) };
}

export function serializePcrsSerialized(sel: PcrSelection[], values: PcrValues): Uint8Array {
  const flat = flatten(sel, values);
  const lists = Math.ceil(flat.length / 8);
  const out = new Uint8Array(SER_SEL + 4 + lists * SER_DIGESTS);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, sel.length, true);
  sel.forEach((s, i) => {
    const o = 4 + i * 8;
    dv.setUint16(o, s.hash, true);
    out[o + 2] = s.sizeofSelect;
    out.set(pcrsToBits(s.pcrs, s.sizeofSelect), o + 3);
  });
  dv.setUint32(SER_SEL, lists, true);
  for (let l = 0; l < lists; l++) {
    const base = SER_SEL + 4 + l * SER_DIGESTS;
    const chunk = flat.slice(l * 8, l * 8 + 8);
    dv.setUint32(base, chunk.length, true);
    chunk.forEach((d, i) => {
      dv.setUint16(base + 4 + i * 66, d.length, true);
      out.set(d, base + 4 + i * 66 + 2);
    });
  }
  return out;
}

/** Newer tpm2-tools `-F marshaled`: TPM-marshaled TPML_PCR_SELECTION, u32 n, n × TPML_DIGEST. */
function parseMarshaled(b: Uint8Array): { selection: PcrSelection[]; values: PcrValues } {
  const what = 'PCR file (marshaled)';
  const r = new ByteReader(b, what);
  const sel = readPcrSelection(r);
  const lists = r.u32be('TPML_DIGEST list count');
  if (lists > 64) throw fmt(what, `digest list count ${lists} is implausible`);
  const digests: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) digests.push(...readDigestList(r));
  r.end();
  return { selection: sel, values: assignDigests(sel, digests, what) };
}

export function serializePcrsMarshaled(sel: PcrSelection[], values: PcrValues): Uint8Array {
  const flat = flatten(sel, values);
  const w = writePcrSelection(new ByteWriter(), sel);
  const lists = Math.ceil(flat.length / 8);
  w.u32(lists);
  for (let l = 0; l < lists; l++) writeDigestList(w, flat.slice(l * 8, l * 8 + 8));
  return w.finish();
}

/** The digests of `sel` in TPM order; a PCR missing from `values` is an error naming it. */
export function flatten(sel: PcrSelection[], values: PcrValues): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of sel) {
    for (const p of s.pcrs) {
      const v = values.get(s.hash)?.get(p);
      if (!v) {
        throw new EvidenceFormatError(
          'TPM_PCR_MISSING',
          `the quote selects PCR ${hashAlgById(s.hash)?.name ?? algName(s.hash)}:${p} but no value for it was supplied`,
        );
      }
      out.push(v);
    }
  }
  return out;
}

/**
 * A PCR map in YAML or JSON: `{sha256: {0: "0x…", 16: "…"}}`, optionally under a top-level `pcrs:` key — the
 * shape tpm2_pcrread and tpm2_quote print. Values are hex, with or without 0x.
 */
function parseMap(text: string): PcrValues {
  const what = 'PCR map';
  let doc: unknown;
  try {
    // failsafe: every scalar stays a string, so 0x… digests are not turned into lossy numbers.
    doc = parseYaml(text, { schema: 'failsafe' });
  } catch (e) {
    throw fmt(what, `is not valid YAML/JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (doc && typeof doc === 'object' && 'pcrs' in doc) doc = (doc as Record<string, unknown>).pcrs;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw fmt(what, 'must map bank names to {index: hex}');
  const out: PcrValues = new Map();
  for (const [bankName, entries] of Object.entries(doc as Record<string, unknown>)) {
    const alg = hashAlgByName(bankName);
    if (!alg) throw fmt(what, `unknown PCR bank '${bankName}'`);
    if (!entries || typeof entries !== 'object' || Array.isArray(entries)) throw fmt(what, `bank ${bankName} must map index to hex`);
    const bank = new Map<number, Uint8Array>();
    for (const [k, v] of Object.entries(entries as Record<string, unknown>)) {
      const idx = Number(k.trim());
      if (!Number.isInteger(idx) || idx < 0 || idx >= 256) throw fmt(what, `bad PCR index '${k}' in bank ${bankName}`);
      let d: Uint8Array;
      try {
        d = fromHex(String(v));
      } catch {
        throw fmt(what, `PCR ${bankName}:${idx} is not hex`);
      }
      if (d.length !== alg.size) throw fmt(what, `PCR ${bankName}:${idx} is ${d.length} bytes, expected ${alg.size}`);
      bank.set(idx, d);
    }
    out.set(alg.id, bank);
  }
  return out;
}

/**
 * Any PCR file Coffer accepts: tpm2_quote -o (serialized, the default, or -F values, which needs the quote's
 * selection to be split), marshaled, or a YAML/JSON map.
 */
export function parsePcrsFile(b: Uint8Array, quoteSelection?: PcrSelection[]): PcrValues {
  if (b.length === 0) throw fmt('PCR file', 'is empty');
  if (looksSerialized(b)) return parseSerialized(b).values;
  // -F values: concatenated digests in the quote's selection order (only recognisable by its exact length).
  const sizes = quoteSelection?.flatMap((s) => s.pcrs.map(() => hashAlgById(s.hash)?.size ?? 0)) ?? [];
  const valuesFit = !!quoteSelection && !sizes.includes(0) && sizes.reduce((a, c) => a + c, 0) === b.length;
  const asValues = () => {
    const digests: Uint8Array[] = [];
    let o = 0;
    for (const n of sizes) {
      digests.push(b.subarray(o, o + n));
      o += n;
    }
    return assignDigests(quoteSelection!, digests, 'PCR file (values)');
  };
  // Text (a YAML/JSON map) is printable ASCII throughout; binary digests almost never are.
  const isText = b.every((c) => c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f));
  if (isText) {
    try {
      return parseMap(Buffer.from(b).toString('utf8'));
    } catch (e) {
      if (!valuesFit) throw e;
      return asValues();
    }
  }
  // A marshaled file starts with a big-endian bank count (0 < n ≤ 16), so its first three bytes are zero.
  if (b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] > 0 && b[3] <= 16) {
    try {
      return parseMarshaled(b).values;
    } catch (e) {
      if (!valuesFit) throw e;
    }
  }
  if (valuesFit) return asValues();
  throw fmt('PCR file', `format not recognised (${b.length} bytes: not tpm2-tools serialized/values, marshaled, YAML or JSON)`);
}

export { parseSerialized as parsePcrsSerialized, parseMarshaled as parsePcrsMarshaled };
