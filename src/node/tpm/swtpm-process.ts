import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

/** A spare loopback TCP port (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function waitPort(port: number, deadline: number, child: { exited: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = connect({ port, host: '127.0.0.1' });
      c.once('connect', () => (c.destroy(), resolve()));
      c.once('error', () => {
        c.destroy();
        if (child.exited || Date.now() > deadline) reject(new Error(`swtpm did not listen on 127.0.0.1:${port}`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export interface SwtpmProcess {
  port: number;
  ctrlPort: number;
  /** Stops swtpm with SIGTERM and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `swtpm socket --tpm2` on loopback with its state in `stateDir` and waits until it accepts connections.
 * `startupClear` (default true) has swtpm power on and run TPM2_Startup(CLEAR) itself; false leaves that to the
 * caller over the control channel, as a platform would. A start failure kills the child and names swtpm's stderr.
 */
export async function launchSwtpm(o: { stateDir: string; port: number; ctrlPort: number; startupClear?: boolean }): Promise<SwtpmProcess> {
  const state = { exited: false };
  const child: ChildProcess = spawn(
    'swtpm',
    [
      'socket', '--tpm2',
      '--server', `type=tcp,port=${o.port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${o.ctrlPort},bindaddr=127.0.0.1`,
      '--tpmstate', `dir=${o.stateDir}`,
      ...(o.startupClear === false ? [] : ['--flags', 'startup-clear']),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.once('exit', () => (state.exited = true));
  child.once('error', () => (state.exited = true));
  try {
    await waitPort(o.port, Date.now() + 5000, state);
  } catch (e) {
    if (!state.exited) child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}${stderr ? `: ${stderr.trim()}` : ''}`);
  }
  return {
    port: o.port,
    ctrlPort: o.ctrlPort,
    stop: () =>
      new Promise<void>((resolve) => {
        if (state.exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
