/** Minimal protobuf wire-format reader for test fixtures (go-tpm-tools attest.Attestation); not product code. */
export type PbFields = Map<number, (bigint | Uint8Array)[]>;

export function decodePb(b: Uint8Array): PbFields {
  const out: PbFields = new Map();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= b.length) throw new Error('protobuf: truncated varint');
      const c = b[i++];
      v |= BigInt(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    let val: bigint | Uint8Array;
    if (wire === 0) val = varint();
    else if (wire === 2) {
      const n = Number(varint());
      if (i + n > b.length) throw new Error('protobuf: truncated bytes');
      val = b.subarray(i, i + n);
      i += n;
    } else if (wire === 5) {
      val = b.subarray(i, i + 4);
      i += 4;
    } else if (wire === 1) {
      val = b.subarray(i, i + 8);
      i += 8;
    } else throw new Error(`protobuf: wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), val]);
  }
  return out;
}

export function pbBytes(f: PbFields, n: number): Uint8Array | undefined {
  const v = f.get(n)?.[0];
  return v instanceof Uint8Array ? v : undefined;
}
