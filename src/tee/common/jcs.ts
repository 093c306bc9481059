/**
 * RFC 8785 JSON Canonicalization Scheme for the JSON values Coffer hashes (KBS runtime data, sample signatures):
 * object keys sorted by UTF-16 code units, no whitespace, ECMAScript number and string serialisation — which is
 * exactly what JSON.stringify does for primitives.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('JCS cannot encode a non-finite number');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new TypeError(`JCS cannot encode a ${typeof v}`);
}
