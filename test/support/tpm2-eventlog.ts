import { spawnSync } from 'node:child_process';
import { parse as parseYaml } from 'yaml';

export const tpm2EventlogSkip: string | false =
  spawnSync('tpm2_eventlog', ['--version']).status === 0 ? false : 'tpm2_eventlog (tpm2-tools) is not installed: cross-check skipped';

/**
 * Runs tpm2_eventlog and returns its replayed PCRs (bank → index → lower-case hex), or undefined when it
 * rejects the log. Its YAML `events:` part repeats keys, so only the `pcrs:` tail is parsed.
 */
export function tpm2EventlogPcrs(file: string): Map<string, Map<number, string>> | undefined {
  const r = spawnSync('tpm2_eventlog', [file], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 30000 });
  if (r.status !== 0) return undefined;
  const i = r.stdout.search(/^pcrs:/m);
  if (i < 0) throw new Error(`tpm2_eventlog printed no pcrs: section for ${file}`);
  const doc = parseYaml(r.stdout.slice(i), { schema: 'failsafe' }) as { pcrs: Record<string, Record<string, string>> };
  const out = new Map<string, Map<number, string>>();
  for (const [bank, m] of Object.entries(doc.pcrs)) {
    out.set(bank, new Map(Object.entries(m).map(([k, v]) => [Number(k), v.replace(/^0x/i, '').toLowerCase()])));
  }
  return out;
}
