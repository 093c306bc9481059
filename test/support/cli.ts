/** Running `coffer` in tests: in-process for one-shot commands, as a real child process for the servers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/run.js';
import type { CommandContext } from '../../src/cli/context.js';

const BIN = fileURLToPath(new URL('../../bin/coffer.js', import.meta.url));

/** One command in-process; `code` is the exit status (-1 for a command that kept running). */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const r = await runCli(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code: r.kind === 'exit' ? r.code : -1, out, err };
}

/** A CommandContext for calling a command's start function directly; `out()` is what it printed. */
export function captureContext(): CommandContext & { out(): string } {
  let out = '';
  return { io: { out: (s: string) => void (out += s), err: () => undefined }, setExit: () => undefined, keepRunning: () => undefined, out: () => out };
}

export interface CofferServer {
  url: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGKILL unless already exited. */
  kill(): void;
}

/** `bin/coffer.js ARGS` as users run it, resolved once it prints `ready on URL`. */
export async function spawnCofferServer(args: string[], o: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CofferServer> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => void (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`coffer ${args.join(' ')} did not start: ${stdout} ${stderr}`)), o.timeoutMs ?? 60_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /ready on (https?:\/\/\S+)/.exec(stdout);
      if (m) (clearTimeout(t), resolve(m[1]));
    });
    child.on('exit', (c) => (clearTimeout(t), reject(new Error(`coffer ${args.join(' ')} exited ${c}: ${stderr}`))));
  }).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    url,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    kill: () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')),
  };
}
