/**
 * Splits a Kubernetes List response body into its envelope and the raw text of each item without building the
 * whole object graph: a 10,000-pod list is ~17 MiB, and one JSON.parse of it costs ~100 MB of short-lived heap
 * on a node agent that should stay small. Items are returned as byte ranges; the envelope (kind, apiVersion,
 * metadata) is parsed with the items array emptied.
 */
export interface ScannedList {
  envelope: Record<string, any>;
  items: { start: number; end: number }[];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

export class ListScanError extends Error {
  readonly code = 'BAD_LIST_BODY';
}

export function scanList(buf: Buffer): ScannedList {
  let depth = 0;
  let inString = false;
  let stringStart = -1;
  let lastKeyAtDepth1 = '';
  let itemsStart = -1; // index of '[' of the items array
  let itemsEnd = -1; // index of its ']'
  let itemStart = -1;
  const items: { start: number; end: number }[] = [];
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        if (depth === 1 && itemsStart < 0) lastKeyAtDepth1 = buf.toString('utf8', stringStart + 1, i);
      }
      continue;
    }
    if (c === QUOTE) {
      inString = true;
      stringStart = i;
    } else if (c === LBRACE || c === LBRACKET) {
      if (depth === 1 && c === LBRACKET && lastKeyAtDepth1 === 'items' && itemsStart < 0) itemsStart = i;
      else if (depth === 2 && itemsStart >= 0 && itemsEnd < 0 && c === LBRACE) itemStart = i;
      depth++;
    } else if (c === RBRACE || c === RBRACKET) {
      depth--;
      if (depth === 2 && c === RBRACE && itemStart >= 0 && itemsEnd < 0) {
        items.push({ start: itemStart, end: i + 1 });
        itemStart = -1;
      } else if (depth === 1 && c === RBRACKET && itemsStart >= 0 && itemsEnd < 0) itemsEnd = i;
      if (depth < 0) throw new ListScanError('unbalanced JSON in list body');
    }
  }
  if (depth !== 0 || inString) throw new ListScanError('truncated JSON in list body');
  let envelope: Record<string, any>;
  try {
    envelope =
      itemsStart >= 0 && itemsEnd > itemsStart
        ? JSON.parse(buf.toString('utf8', 0, itemsStart) + '[]' + buf.toString('utf8', itemsEnd + 1))
        : JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new ListScanError(`list envelope is not JSON: ${(e as Error).message}`);
  }
  return { envelope, items };
}
