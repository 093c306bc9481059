/**
 * Nesting-depth bounds checked over the raw text BEFORE a parser sees it. JSON.parse, the YAML composer, deep
 * copies and canonicalisers all recurse: a 2 KB `[[[[…` document overflowed the stack in the parser, and a deeper
 * one exhausted the heap. Scanning is one linear pass with no allocation, so the bound costs nothing on real input.
 */

/** Deepest nesting accepted on any service or CLI input; real policies, evidence and pods stay well under 32. */
export const MAX_NESTING_DEPTH = 64;

/** Nesting depth of a JSON text: brackets outside strings. Invalid JSON is left for the parser to reject. */
export function jsonDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * An upper bound on a YAML text's nesting depth: flow brackets (outside quotes and comments) plus block levels
 * (an indentation stack, where each leading `- `/`? `/`: ` indicator opens one more level). It may over-count
 * (a literal block scalar with many indentation steps) but never under-counts, which is the safe direction.
 */
export function yamlDepth(text: string, stopAbove = Infinity): number {
  let max = 0;
  let flow = 0;
  const indents: number[] = [];
  for (const line of text.split('\n')) {
    let col = 0;
    while (col < line.length && (line[col] === ' ' || line[col] === '\t')) col++;
    if (col === line.length || line[col] === '#') continue;
    if (flow === 0) {
      // Compact block sequences (`- - - x`) nest on one line: each indicator is a level at its own column.
      let p = col;
      const levels = [p];
      while (/[-?:]/.test(line[p] ?? '') && (line[p + 1] === ' ' || line[p + 1] === '\t')) {
        p += 2;
        while (line[p] === ' ' || line[p] === '\t') p++;
        if (p < line.length) levels.push(p);
      }
      while (indents.length > 0 && indents[indents.length - 1] >= col) indents.pop();
      indents.push(...levels);
    }
    let quote = '';
    for (let i = col; i < line.length; i++) {
      const c = line[i];
      if (quote) {
        if (quote === '"' && c === '\\') i++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        // A quote opens a quoted scalar only where a scalar can start; `it's` inside plain text does not.
        const prev = i === 0 ? ' ' : line[i - 1];
        if (/[\s[{,:]/.test(prev)) quote = c;
      } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) break;
      else if (c === '[' || c === '{') flow++;
      else if ((c === ']' || c === '}') && flow > 0) flow--;
      max = Math.max(max, indents.length + flow);
      if (max > stopAbove) return max;
    }
  }
  return max;
}

/** A document nested deeper than the bound; `depth` is where the scan stopped (at least max + 1). */
export class NestingTooDeepError extends Error {
  readonly code = 'NESTING_TOO_DEEP';
  constructor(
    readonly what: string,
    readonly max: number,
  ) {
    super(`${what} is nested more than ${max} levels deep`);
  }
}

export function assertJsonDepth(text: string, what: string, max = MAX_NESTING_DEPTH): void {
  if (jsonDepth(text, max) > max) throw new NestingTooDeepError(what, max);
}

export function assertYamlDepth(text: string, what: string, max = MAX_NESTING_DEPTH): void {
  if (yamlDepth(text, max) > max) throw new NestingTooDeepError(what, max);
}
