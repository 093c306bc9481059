import { CliUsageError } from './context.js';

/** Node's timers take at most 2^31-1 ms (~24.8 days); a larger delay fires after 1 ms, a busy loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Parses a Go-style duration flag ("10s", "500ms", "1m", "1h30m") into milliseconds. Durations used as timers
 * (the default `max`) must fit a Node timer; a flag that is not a timer (a certificate lifetime) passes its own max.
 */
export function parseDuration(flag: string, v: string, max: number = MAX_TIMER_MS): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(v))) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms']!;
  }
  const shown = v.length > 40 ? `${v.slice(0, 40)}…` : v;
  if (consumed !== v.length || consumed === 0 || !(total >= 1)) throw new CliUsageError(`${flag} '${shown}' is not a positive duration like 10s, 500ms or 1m`);
  if (total > max) throw new CliUsageError(`${flag} '${shown}' is too long (at most ${formatMs(max)})`);
  return Math.round(total);
}

function formatMs(ms: number): string {
  return ms >= 3_600_000 ? `${Math.floor(ms / 3_600_000)}h` : ms >= 1000 ? `${Math.floor(ms / 1000)}s` : `${ms}ms`;
}
