/**
 * Just enough DER to read the values of AMD's VCEK extensions (INTEGER, IA5String/UTF8String, OCTET STRING). Every
 * length is bounds-checked; anything unexpected returns undefined and the caller rejects the certificate.
 */
export interface Tlv {
  tag: number;
  value: Uint8Array;
  /** Total encoded length (header + value). */
  size: number;
}

export function readTlv(b: Uint8Array): Tlv | undefined {
  if (b.length < 2) return undefined;
  const tag = b[0];
  let len = b[1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || b.length < 2 + n) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[2 + i];
    hdr = 2 + n;
  }
  if (hdr + len > b.length) return undefined;
  return { tag, value: b.subarray(hdr, hdr + len), size: hdr + len };
}

/** A whole-buffer TLV of the given tag (no trailing bytes). */
export function readExact(b: Uint8Array, tag: number): Uint8Array | undefined {
  const t = readTlv(b);
  return t && t.tag === tag && t.size === b.length ? t.value : undefined;
}

/** Non-negative DER INTEGER that fits a JS number safely (SPLs are 0..255; struct version small). */
export function readUint(b: Uint8Array): number | undefined {
  const v = readExact(b, 0x02);
  if (!v || v.length === 0 || v.length > 6 || v[0] & 0x80) return undefined;
  let n = 0;
  for (const x of v) n = n * 256 + x;
  return n;
}

export function readString(b: Uint8Array): string | undefined {
  const t = readTlv(b);
  if (!t || t.size !== b.length || (t.tag !== 0x16 && t.tag !== 0x0c && t.tag !== 0x13)) return undefined;
  return Buffer.from(t.value).toString('utf8');
}
