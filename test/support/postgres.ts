import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts a throwaway PostgreSQL from Debian's packages: initdb in a temp dir as the unprivileged `postgres` user
 * (we run as root, and postgres refuses root), on a spare loopback port. `stop()` shuts it down and removes it.
 */
export interface PgHandle {
  url: string;
  stop(): void;
}

function pgBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(base, versions[0], 'bin');
  }
  return existsSync('/usr/local/bin/initdb') ? '/usr/local/bin' : undefined;
}

function hasUser(name: string): boolean {
  return spawnSync('id', ['-u', name]).status === 0;
}

/** Why PostgreSQL tests skip, or false when they can run. */
export const pgSkip: string | false = (() => {
  if (!pgBinDir()) return 'PostgreSQL is not installed (apt-get install postgresql); PostgreSQL store tests skipped';
  if (process.getuid?.() === 0 && !hasUser('postgres')) return 'no unprivileged postgres user to run initdb as; PostgreSQL store tests skipped';
  return false;
})();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startPostgres(): Promise<PgHandle> {
  const bin = pgBinDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'coffer-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const full = join(bin, cmd);
    if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' });
    else execFileSync(full, args, { stdio: 'pipe' });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=40`, 'start']);
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
