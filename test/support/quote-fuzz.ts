/**
 * Quote mutator shared by the fuzz test and `npm run fuzz`: truncations, bit flips, byte overwrites, insertions,
 * deletions and edits of every length field (located by parsing the original). Deterministic for a given seed.
 */
import { join } from 'node:path';
import { parseQuote } from '../../src/tee/dcap/quote.js';
import { openDcapCollateral } from '../../src/tee/dcap/collateral.js';
import type { DcapWorld } from './dcap-world.js';
import { haveVectors, readVector, vectorsDir } from './vectors.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** Offsets of the u16/u32 length and type fields of a well-formed quote. */
export function lengthFields(q: Uint8Array): { off: number; size: 2 | 4 }[] {
  const p = parseQuote(q);
  const out: { off: number; size: 2 | 4 }[] = [];
  if (p.version === 5) out.push({ off: 48, size: 2 }, { off: 50, size: 4 });
  const sigLen = p.signedData.length;
  out.push({ off: sigLen, size: 4 });
  let o = sigLen + 4 + 128;
  if (p.version !== 3) {
    out.push({ off: o, size: 2 }, { off: o + 2, size: 4 });
    o += 6;
  }
  o += 384 + 64;
  out.push({ off: o, size: 2 });
  o += 2 + p.qeAuthData.length;
  out.push({ off: o, size: 2 }, { off: o + 2, size: 4 });
  out.push({ off: 0, size: 2 }, { off: 2, size: 2 }, { off: 4, size: 4 });
  return out;
}

export function mutate(q: Uint8Array, fields: { off: number; size: 2 | 4 }[], r: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  const kind = pick(6);
  const b = Buffer.from(q);
  switch (kind) {
    case 0:
      return new Uint8Array(b.subarray(0, pick(b.length)));
    case 1: {
      const flips = 1 + pick(3);
      for (let i = 0; i < flips; i++) b[pick(b.length)] ^= 1 << pick(8);
      return new Uint8Array(b);
    }
    case 2: {
      const f = fields[pick(fields.length)];
      const cur = f.size === 2 ? b.readUInt16LE(f.off) : b.readUInt32LE(f.off);
      const choices = [0, 1, cur + 1, cur - 1, cur + 64, cur * 2, f.size === 2 ? 0xffff : 0xffffffff, pick(f.size === 2 ? 0x10000 : 0x100000)];
      const v = Math.max(0, choices[pick(choices.length)]) % (f.size === 2 ? 0x10000 : 0x100000000);
      if (f.size === 2) b.writeUInt16LE(v, f.off);
      else b.writeUInt32LE(v, f.off);
      return new Uint8Array(b);
    }
    case 3:
      b[pick(b.length)] = pick(256);
      return new Uint8Array(b);
    case 4: {
      const at = pick(b.length + 1);
      return new Uint8Array(Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]));
    }
    default: {
      const at = pick(b.length);
      return new Uint8Array(Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(8))]));
    }
  }
}

/**
 * A mutation that leaves the quote's signed content unchanged: identical bytes up to the end of the signature data;
 * whatever follows is ignored (as Intel's QVL does) and only draws a warning.
 */
export function equivalent(orig: Uint8Array, m: Uint8Array): boolean {
  const pad = parseQuote(orig).trailingBytes;
  const end = orig.length - pad;
  if (m.length < end) return false;
  return Buffer.compare(Buffer.from(orig.subarray(0, end)), Buffer.from(m.subarray(0, end))) === 0;
}

export interface FuzzCase {
  name: string;
  q: Uint8Array;
  opts: Record<string, unknown>;
}

/**
 * The seed quotes both fuzzers mutate: generated SGX v3/v4 and TDX v4/v5 (TD 1.0 and 1.5) from the test PKI and,
 * when ../shared/vectors is present, the real dcap-qvl quotes with their collateral.
 */
export async function dcapFuzzCases(w: DcapWorld): Promise<FuzzCase[]> {
  const cases: FuzzCase[] = [];
  for (const [tee, version, td15] of [['sgx', 3], ['sgx', 4], ['tdx', 4], ['tdx', 5], ['tdx', 5, true]] as const) {
    cases.push({
      name: `generated ${tee} v${version}${td15 ? ' TD1.5' : ''}`,
      q: await w.quote({ tee, version, td15 }),
      opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral(tee) } },
    });
  }
  if (haveVectors) {
    const at = new Date('2025-07-01T00:00:00Z');
    for (const [q, c] of [
      ['sgx/dcap-qvl_sgx_quote.bin', 'collateral/dcap-qvl_sgx_quote_collateral.json'],
      ['tdx/dcap-qvl_tdx_quote_v4.bin', 'collateral/dcap-qvl_tdx_quote_collateral.json'],
    ]) {
      cases.push({ name: q, q: readVector(q), opts: { at, dcap: { provider: await openDcapCollateral(join(vectorsDir, c)) } } });
    }
  }
  return cases;
}
