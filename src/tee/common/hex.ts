const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Lower-case hex. Claims hold a dozen short fields per verification: below 32 bytes a string built from a byte
 * table costs a fraction of a Buffer view plus the native hex encoder's call overhead. From 32 bytes (measurements,
 * report data) the encoder wins once the claims are serialised (the token, `coffer verify`'s output): the table
 * builds a rope of one cons string per byte (2 KB of garbage for 64 bytes) that JSON.stringify must then flatten.
 */
export function toHex(b: Uint8Array): string {
  if (b.length >= 32) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX_BYTE[b[i]];
  return s;
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
