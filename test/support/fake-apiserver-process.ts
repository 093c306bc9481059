/** Runs the fake kube-apiserver as a child process (tsx) and hands back its URL and pid for SIGSTOP/SIGKILL tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./fake-apiserver-main.ts', import.meta.url));

export interface FakeApiServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL (or the given signal) and wait for exit; idempotent. */
  stop(sig?: NodeJS.Signals): Promise<void>;
}

export interface FakeProcessOptions {
  port?: number;
  pods?: number;
  nodes?: number;
  namespaces?: number;
  history?: number;
  bookmarkMs?: number;
  tlsDir?: string;
}

export async function spawnFakeApiServer(opts: FakeProcessOptions = {}): Promise<FakeApiServerProcess> {
  const args = ['--import', 'tsx', MAIN, '--port', String(opts.port ?? 0), '--pods', String(opts.pods ?? 0), '--nodes', String(opts.nodes ?? 1), '--namespaces', String(opts.namespaces ?? 1)];
  if (opts.history !== undefined) args.push('--history', String(opts.history));
  if (opts.bookmarkMs !== undefined) args.push('--bookmark-ms', String(opts.bookmarkMs));
  if (opts.tlsDir) args.push('--tls-dir', opts.tlsDir);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`fake apiserver exited early (${code})`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  let done = false;
  return {
    url,
    pid: child.pid!,
    child,
    signal: (sig) => {
      if (!done) child.kill(sig);
    },
    stop: async (sig = 'SIGKILL') => {
      if (!done && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill(sig);
      }
      done = true;
      await exited;
    },
  };
}
