/** Runs `coffer edgehub` as a child process (for RSS measurements and restart tests); kill by pid in teardown. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/coffer.js', import.meta.url));

export interface EdgeHubProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** `bin` defaults to bin/coffer.js (TypeScript through tsx); the benchmark also runs a compiled bundle. */
export async function spawnEdgeHub(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = [], bin = BIN): Promise<EdgeHubProcess> {
  const child = spawn(process.execPath, [...nodeArgs, bin, 'edgehub', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`edgehub exited early (${code}): ${err}`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  return {
    url,
    pid: child.pid!,
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
