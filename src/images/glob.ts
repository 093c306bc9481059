import { ImageError } from './errors.js';

/**
 * Repository globs: `*` matches any run of characters except '/', `**` any run including '/', everything else
 * literally. Matching simulates the pattern as an NFA over a set of positions (no backtracking), so the cost is
 * O(len(text) × len(pattern)) whatever the input: a hostile image name cannot stall the webhook.
 */
export const MAX_GLOB = 256;

type Tok = { kind: 'lit'; ch: string } | { kind: 'star' } | { kind: 'globstar' };

export class Glob {
  private readonly toks: Tok[];
  constructor(readonly source: string) {
    if (source.length === 0 || source.length > MAX_GLOB) throw new ImageError('POLICY_INVALID', `repository glob must be 1..${MAX_GLOB} characters`);
    const toks: Tok[] = [];
    for (let i = 0; i < source.length; i++) {
      if (source[i] === '*') {
        if (source[i + 1] === '*') {
          i++;
          if (toks.at(-1)?.kind !== 'globstar') toks.push({ kind: 'globstar' });
        } else if (toks.at(-1)?.kind !== 'star' && toks.at(-1)?.kind !== 'globstar') toks.push({ kind: 'star' });
      } else toks.push({ kind: 'lit', ch: source[i] });
    }
    this.toks = toks;
  }

  matches(text: string): boolean {
    const n = this.toks.length;
    // states[i] = the pattern prefix of length i matches the text read so far.
    let cur = new Uint8Array(n + 1);
    let next = new Uint8Array(n + 1);
    cur[0] = 1;
    this.closure(cur);
    for (let p = 0; p < text.length; p++) {
      const c = text[p];
      next.fill(0);
      let any = false;
      for (let i = 0; i < n; i++) {
        if (!cur[i]) continue;
        const t = this.toks[i];
        if (t.kind === 'lit') {
          if (t.ch === c) {
            next[i + 1] = 1;
            any = true;
          }
        } else if (t.kind === 'globstar' || c !== '/') {
          next[i] = 1; // a star consumes c and stays
          any = true;
        }
      }
      if (!any) return false;
      this.closure(next);
      [cur, next] = [next, cur];
    }
    return cur[n] === 1;
  }

  /** A star may match nothing: reaching it also reaches the position after it. */
  private closure(s: Uint8Array): void {
    for (let i = 0; i < this.toks.length; i++) if (s[i] && this.toks[i].kind !== 'lit') s[i + 1] = 1;
  }
}
