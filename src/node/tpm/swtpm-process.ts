import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

function setprivOnPath(): boolean {
  return spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
}

async function alive(pid: number): Promise<boolean> {
  try {
    // A zombie (exited, not yet reaped by its new parent) no longer holds files: treat it as gone.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Ends the swtpm a pid file names if it is still running on the same state dir; removes the pid file. */
async function killStale(pidFile: string, stateDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (Number.isInteger(pid) && pid > 1 && cmdline.includes('swtpm') && cmdline.includes(stateDir)) {
      process.kill(pid, 'SIGKILL');
      // Wait (bounded) for it to be gone, so its lock on the state dir is released.
      for (let i = 0; i < 100 && (await alive(pid)); i++) await new Promise((r) => setTimeout(r, 10));
    }
  } catch {
    // gone already (or not ours to inspect)
  }
  rmSync(pidFile, { force: true });
}

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
  // A swtpm left by a SIGKILLed parent holds the state dir's lock and makes the next start fail: end it first.
  const pidFile = join(o.stateDir, 'swtpm.pid');
  await killStale(pidFile, o.stateDir);
  const args = [
    'socket', '--tpm2',
    '--server', `type=tcp,port=${o.port},bindaddr=127.0.0.1`,
    '--ctrl', `type=tcp,port=${o.ctrlPort},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${o.stateDir}`,
    '--pid', `file=${pidFile}`,
    ...(o.startupClear === false ? [] : ['--flags', 'startup-clear']),
  ];
  // swtpm dies with its parent: setpriv (util-linux) sets PR_SET_PDEATHSIG before exec'ing it. swtpm's own
  // `--terminate` / control-channel `clientfd` do not end it when the parent is killed (tried: it keeps running).
  const [cmd, argv] = setprivOnPath() ? ['setpriv', ['--pdeathsig', 'TERM', '--', 'swtpm', ...args]] : ['swtpm', args];
  const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
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
