import { ImageError } from './errors.js';

/**
 * Identity patterns from policies (keyless subject/issuer) run on every admission, so they must not be able to
 * backtrack exponentially. JavaScript has no RE2; instead the accepted language is restricted to what stays
 * linear-ish on a backtracking engine: no backreferences, no lookaround, no quantifier applied to a group that
 * itself contains a quantifier or an alternation (star height ≤ 1, no `(a|a)*`), bounded counted repeats, and a
 * length cap on both the pattern and the text. The pattern always matches the whole text.
 */
export const MAX_PATTERN = 256;
export const MAX_SUBJECT = 1024;

export class SafeRegExp {
  private readonly re: RegExp;
  constructor(readonly source: string) {
    if (typeof source !== 'string' || source.length === 0 || source.length > MAX_PATTERN) throw new ImageError('POLICY_INVALID', `regular expression must be 1..${MAX_PATTERN} characters`);
    checkShape(source);
    try {
      this.re = new RegExp(`^(?:${source})$`, 'u');
    } catch (e) {
      throw new ImageError('POLICY_INVALID', `regular expression ${JSON.stringify(source)} is invalid: ${(e as Error).message}`);
    }
  }

  test(text: string): boolean {
    return text.length <= MAX_SUBJECT && this.re.test(text);
  }
}

function bad(source: string, why: string): never {
  throw new ImageError('POLICY_INVALID', `regular expression ${JSON.stringify(source)} is not allowed: ${why}`);
}

/** One pass over the pattern tracking, per open group, whether it holds a quantifier or an alternation. */
function checkShape(src: string): void {
  const stack: { quantified: boolean; alternation: boolean }[] = [{ quantified: false, alternation: false }];
  let lastGroup: { quantified: boolean; alternation: boolean } | undefined;
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) bad(src, 'trailing backslash');
      if (/[1-9]/.test(n) || n === 'k') bad(src, 'backreferences are not supported');
      i++;
      lastGroup = undefined;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    const top = stack[stack.length - 1];
    if (c === '[') {
      inClass = true;
      lastGroup = undefined;
    } else if (c === '(') {
      if (src[i + 1] === '?') {
        const kind = src.slice(i + 2, i + 4);
        if (kind.startsWith('=') || kind.startsWith('!') || kind === '<=' || kind === '<!') bad(src, 'lookaround is not supported');
        if (kind.startsWith(':')) i += 2;
        else if (kind.startsWith('<')) {
          const end = src.indexOf('>', i);
          if (end < 0) bad(src, 'unterminated group name');
          i = end;
        } else bad(src, 'unsupported group modifier');
      }
      stack.push({ quantified: false, alternation: false });
      lastGroup = undefined;
    } else if (c === ')') {
      if (stack.length === 1) bad(src, 'unbalanced parenthesis');
      lastGroup = stack.pop()!;
      const parent = stack[stack.length - 1];
      parent.quantified ||= lastGroup.quantified;
      parent.alternation ||= lastGroup.alternation;
    } else if (c === '|') {
      top.alternation = true;
      lastGroup = undefined;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      let isQuant = c !== '{';
      if (c === '{') {
        const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(src.slice(i, i + 16));
        if (m) {
          isQuant = true;
          if (Number(m[1]) > 100 || (m[3] !== undefined && m[3] !== '' && Number(m[3]) > 100)) bad(src, 'counted repeats above 100');
          i += m[0].length - 1;
        }
      }
      if (!isQuant) continue;
      // `?` after a quantifier makes it lazy: not a new quantifier.
      if (c === '?' && /[*+?}]/.test(src[i - 1] ?? '') && src[i - 2] !== '\\') continue;
      if (lastGroup && (lastGroup.quantified || lastGroup.alternation)) bad(src, 'a quantified group may not contain a quantifier or an alternation (nested repetition backtracks exponentially)');
      top.quantified = true;
      lastGroup = undefined;
    } else lastGroup = undefined;
  }
  if (inClass) bad(src, 'unterminated character class');
  if (stack.length !== 1) bad(src, 'unbalanced parenthesis');
}
