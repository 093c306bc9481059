/**
 * Node's native hex encoder as a method that takes any Uint8Array as `this` (Buffer.prototype.hexSlice checks only
 * for an ArrayBufferView): one flat string per field, no Buffer view object and no per-byte rope of cons strings
 * (which JSON.stringify must flatten when the claims become a token). Undocumented, so looked up once with a
 * fallback to the documented Buffer-view path.
 */
const hexSlice = (Buffer.prototype as unknown as { hexSlice?: (this: Uint8Array, start: number, end: number) => string }).hexSlice;

/** Lower-case hex. */
export function toHex(b: Uint8Array): string {
  if (typeof hexSlice === 'function') return hexSlice.call(b, 0, b.length);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Strict hex decoding: odd length or non-hex characters are an error, never silently truncated. */
export function fromHex(s: string): Uint8Array {
  const t = s.trim().replace(/^0x/i, '');
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) throw new TypeError('not a hex string');
  return new Uint8Array(Buffer.from(t, 'hex'));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
