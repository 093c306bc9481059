import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort, launchSwtpm } from '../../src/node/tpm/swtpm-process.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set when swtpm is absent: suites skip with this message (.ci/run installs swtpm swtpm-tools tpm2-tools). */
export const swtpmSkip: string | false =
  spawnSync('swtpm', ['--version']).status === 0 ? false : 'swtpm is not installed (apt-get install swtpm swtpm-tools tpm2-tools): live-TPM suite skipped';
export const tpm2ToolsSkip: string | false =
  spawnSync('tpm2_quote', ['--version']).status === 0 ? false : 'tpm2-tools is not installed: cross-check skipped';

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
    try {
      const p = await launchSwtpm({ stateDir: dir, port, ctrlPort: port + 1, startupClear: opts.startupClear });
      return {
        port,
        ctrlPort: p.ctrlPort,
        dir,
        tcti: `swtpm:host=127.0.0.1,port=${port}`,
        stop: async () => {
          await p.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if (tries >= 3) throw e;
    }
  }
}
