/** A bounded map: input-dependent caches (attestation keys, PCK chains) must not grow without limit. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (this.size >= this.limit && !this.has(k)) this.delete(this.keys().next().value as K);
    return super.set(k, v);
  }
}

/**
 * The last few byte strings looked up and their values, found by byte comparison (no hash or key string per lookup),
 * in front of a keyed cache: a batch cycles over a few platforms. Private copies of the bytes: the caller's buffers
 * may be reused or changed.
 */
export class RecentByBytes<V> {
  private readonly recent: { bytes: Uint8Array; value: V }[] = [];
  constructor(private readonly limit: number) {}
  get(bytes: Uint8Array, compute: (bytes: Uint8Array) => V): V {
    for (const r of this.recent) if (r.bytes.byteLength === bytes.byteLength && Buffer.compare(r.bytes, bytes) === 0) return r.value;
    const value = compute(bytes);
    if (this.recent.length >= this.limit) this.recent.shift();
    this.recent.push({ bytes: Uint8Array.from(bytes), value });
    return value;
  }
}
