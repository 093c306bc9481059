/** `coffer agent stats` as a child process, and a reader for the Prometheus text it serves. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/coffer.js', import.meta.url));

export interface StatsProcess {
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
}

/** Starts it with ARGS (pass --listen 127.0.0.1:0); resolves when it logs `listening`. */
export async function spawnStats(args: string[]): Promise<StatsProcess> {
  const child = spawn(process.execPath, [BIN, 'agent', 'stats', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`coffer agent stats did not start: ${stderr}`)), 60_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /"event":"listening","address":"([^"]+)"/.exec(stderr);
      if (m) {
        clearTimeout(t);
        resolve(`http://${m[1]}`);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`coffer agent stats exited ${code}: ${stderr}`));
    });
  });
  return {
    url,
    child,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const done = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      child.kill('SIGTERM');
      return done;
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Exposition text → samples (no HELP/TYPE lines). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The one sample of NAME whose labels include WANT (undefined when none; throws when several match). */
export function pick(samples: Sample[], name: string, want: Record<string, string>): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(want)}`);
  return hits[0]?.value;
}

export async function scrape(url: string): Promise<Sample[]> {
  const r = await fetch(`${url}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
  return parseMetrics(await r.text());
}
