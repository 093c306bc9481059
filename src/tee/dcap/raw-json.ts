/**
 * Finds the exact source text of a top-level member's value in a JSON document. Intel signs the bytes of the
 * `tcbInfo` / `enclaveIdentity` value as served (DCAP PccsAdminTool pcs.py slices the text), so the verifier
 * must check the signature over those bytes, not over a re-serialization.
 */
export function rawMemberText(text: string, key: string): string | undefined {
  let i = skipWs(text, 0);
  if (text[i] !== '{') return undefined;
  i = skipWs(text, i + 1);
  if (text[i] === '}') return undefined;
  for (;;) {
    if (text[i] !== '"') return undefined;
    const kEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, kEnd)) as string;
    i = skipWs(text, kEnd);
    if (text[i] !== ':') return undefined;
    const vStart = skipWs(text, i + 1);
    const vEnd = skipValue(text, vStart);
    if (name === key) return text.slice(vStart, vEnd);
    i = skipWs(text, vEnd);
    if (text[i] === ',') i = skipWs(text, i + 1);
    else return undefined;
  }
}

function skipWs(t: string, i: number): number {
  while (i < t.length && (t[i] === ' ' || t[i] === '\n' || t[i] === '\r' || t[i] === '\t')) i++;
  return i;
}

function skipString(t: string, i: number): number {
  // t[i] === '"'
  for (let j = i + 1; j < t.length; j++) {
    if (t[j] === '\\') j++;
    else if (t[j] === '"') return j + 1;
  }
  throw new SyntaxError('unterminated string');
}

function skipValue(t: string, i: number): number {
  const c = t[i];
  if (c === '"') return skipString(t, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < t.length; j++) {
      const d = t[j];
      if (d === '"') j = skipString(t, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    throw new SyntaxError('unterminated value');
  }
  let j = i;
  while (j < t.length && !/[\s,}\]]/.test(t[j])) j++;
  if (j === i) throw new SyntaxError('missing value');
  return j;
}
