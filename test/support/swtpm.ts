import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set when swtpm is absent: suites skip with this message (.ci/run installs swtpm swtpm-tools tpm2-tools). */
export const swtpmSkip: string | false =
  spawnSync('swtpm', ['--version']).status === 0 ? false : 'swtpm is not installed (apt-get install swtpm swtpm-tools tpm2-tools): live-TPM suite skipped';
export const tpm2ToolsSkip: string | false =
  spawnSync('tpm2_quote', ['--version']).status === 0 ? false : 'tpm2-tools is not installed: cross-check skipped';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function waitPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = connect({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve();
      });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > deadline) reject(new Error(`swtpm did not listen on ${port}`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export interface Swtpm {
  port: number;
  ctrlPort: number;
  dir: string;
  /** TPM2TOOLS_TCTI value for tpm2-tools. */
  tcti: string;
  stop(): Promise<void>;
}

/**
 * Starts a fresh swtpm (TPM 2.0) on spare loopback ports with a temporary state dir. By default it powers on
 * and runs TPM2_Startup(CLEAR) itself; `{ startupClear: false }` leaves that to the caller (control channel
 * CMD_INIT, then TPM2_Startup), as a platform would. `stateDir`: an existing state (e.g. from swtpm_setup);
 * it is removed with the rest on stop().
 */
export async function startSwtpm(opts: { startupClear?: boolean; stateDir?: string } = {}): Promise<Swtpm> {
  const dir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'coffer-swtpm-'));
  for (let tries = 0; ; tries++) {
    // tpm2-tools' swtpm TCTI wants the control port at port+1.
    const port = await freePort();
    const ctrlPort = port + 1;
    const child: ChildProcess = spawn(
      'swtpm',
      ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`, '--tpmstate', `dir=${dir}`, ...(opts.startupClear === false ? [] : ['--flags', 'startup-clear'])],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let exited = false;
    child.once('exit', () => (exited = true));
    try {
      await waitPort(port, Date.now() + 5000);
      if (exited) throw new Error('swtpm exited');
      return {
        port,
        ctrlPort,
        dir,
        tcti: `swtpm:host=127.0.0.1,port=${port}`,
        stop: () =>
          new Promise<void>((resolve) => {
            const done = () => {
              rmSync(dir, { recursive: true, force: true });
              resolve();
            };
            if (exited) return done();
            child.once('exit', done);
            child.kill('SIGTERM');
          }),
      };
    } catch (e) {
      if (!exited) child.kill('SIGKILL');
      if (tries >= 3) throw e;
    }
  }
}
