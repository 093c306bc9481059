import { CliUsageError } from './context.js';

/** Parses a Go-style duration flag ("10s", "500ms", "1m", "1h30m") into milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(v))) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms']!;
  }
  if (consumed !== v.length || consumed === 0 || total <= 0) throw new CliUsageError(`${flag} '${v}' is not a positive duration like 10s, 500ms or 1m`);
  return total;
}
