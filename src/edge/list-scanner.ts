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

/**
 * The same split, fed chunk by chunk (reading a 17 MiB cache file 1 MiB at a time): each item's bytes and absolute
 * offset go to `onItem` as soon as the item closes; only the envelope around the items array is kept.
 */
export class ItemStreamScanner {
  private depth = 0;
  private inString = false;
  private escape = false;
  private key: number[] = [];
  private collectingKey = false;
  private lastKey = '';
  private state: 'head' | 'items' | 'tail' = 'head';
  private prefix: Buffer[] = [];
  private suffix: Buffer[] = [];
  private item: Buffer[] = [];
  private itemStart = -1;

  constructor(private readonly onItem: (bytes: Buffer, absStart: number) => void) {}

  feed(chunk: Buffer, abs: number): void {
    const startState = this.state;
    let segStart = this.itemStart >= 0 ? 0 : -1; // where the open item's bytes begin in this chunk
    let headEnd = -1;
    let tailStart = -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === BACKSLASH) this.escape = true;
        else if (c === QUOTE) {
          this.inString = false;
          if (this.collectingKey) {
            this.lastKey = Buffer.from(this.key).toString('utf8');
            this.collectingKey = false;
          }
        } else if (this.collectingKey && this.key.length < 64) this.key.push(c);
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
        if (this.depth === 1 && this.state === 'head') {
          this.collectingKey = true;
          this.key = [];
        }
      } else if (c === LBRACE || c === LBRACKET) {
        if (this.depth === 1 && c === LBRACKET && this.state === 'head' && this.lastKey === 'items') {
          this.state = 'items';
          headEnd = i;
        } else if (this.depth === 2 && this.state === 'items' && c === LBRACE) {
          this.itemStart = abs + i;
          this.item = [];
          segStart = i;
        }
        this.depth++;
      } else if (c === RBRACE || c === RBRACKET) {
        this.depth--;
        if (this.depth < 0) throw new ListScanError('unbalanced JSON in list body');
        if (this.depth === 2 && c === RBRACE && this.state === 'items' && this.itemStart >= 0) {
          this.item.push(chunk.subarray(segStart, i + 1));
          this.onItem(Buffer.concat(this.item), this.itemStart);
          this.item = [];
          this.itemStart = -1;
          segStart = -1;
        } else if (this.depth === 1 && c === RBRACKET && this.state === 'items') {
          this.state = 'tail';
          tailStart = i + 1;
        }
      }
    }
    // Anything kept past this call is copied: the caller may reuse its read buffer.
    if (startState === 'head') this.prefix.push(Buffer.from(chunk.subarray(0, headEnd >= 0 ? headEnd : chunk.length)));
    if (this.itemStart >= 0 && segStart >= 0) this.item.push(Buffer.from(chunk.subarray(segStart)));
    if (startState === 'tail') this.suffix.push(Buffer.from(chunk));
    else if (tailStart >= 0) this.suffix.push(Buffer.from(chunk.subarray(tailStart)));
  }

  /** The envelope fields before the items array, once it has started (for writers that put metadata first). */
  headFields(): Record<string, any> | undefined {
    if (this.state === 'head') return undefined;
    try {
      return JSON.parse(Buffer.concat([...this.prefix, Buffer.from('[]}')]).toString('utf8'));
    } catch {
      return undefined;
    }
  }

  /** The envelope (items emptied); throws on truncated input. */
  finish(): Record<string, any> {
    if (this.depth !== 0 || this.inString || this.state !== 'tail') throw new ListScanError('truncated JSON in list body');
    try {
      return JSON.parse(Buffer.concat([...this.prefix, Buffer.from('[]'), ...this.suffix]).toString('utf8'));
    } catch (e) {
      throw new ListScanError(`list envelope is not JSON: ${(e as Error).message}`);
    }
  }
}
