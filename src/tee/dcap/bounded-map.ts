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
