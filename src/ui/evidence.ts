/** Pasted evidence: JSON stays text, hex and base64 are decoded; the API gets base64 either way. */
export function pastedBytes(text: string): Uint8Array {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) return new TextEncoder().encode(t);
  const compact = t.replace(/\s+/g, '');
  if (/^(0x)?[0-9a-fA-F]+$/.test(compact) && compact.replace(/^0x/, '').length % 2 === 0) {
    const hex = compact.replace(/^0x/, '');
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) {
    const bin = atob(compact.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  return new TextEncoder().encode(t);
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export async function fileBytes(f: File): Promise<Uint8Array> {
  return new Uint8Array(await f.arrayBuffer());
}
