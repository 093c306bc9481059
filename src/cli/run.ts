import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { commandTable, findCommand } from './commands/index.js';
import { CliUsageError, EXIT, type CliIO, type CommandContext } from './context.js';
import { CofferError } from '../tee/common/errors.js';
import { describeFsError, oneLine } from './files.js';

export type CliOutcome = { kind: 'exit'; code: number } | { kind: 'running' };

/** Builds the `coffer` program and runs one invocation. Only src/cli/main.ts turns the outcome into process.exit. */
export async function runCli(argv: string[], io: CliIO): Promise<CliOutcome> {
  let code: number = EXIT.OK;
  let running = false;
  const ctx: CommandContext = {
    io,
    setExit: (c) => {
      code = Math.max(code, c);
    },
    keepRunning: () => {
      running = true;
    },
  };
  const program = new Command('coffer')
    .description('Coffer: attestation, key broker and isolation policy for confidential and sandboxed workloads')
    .exitOverride()
    // A parse error is its own line plus where to look, not the whole help text on stderr (subcommands inherit it).
    .showHelpAfterError('(coffer help <command> shows its usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .version(cofferVersion(), '-V, --version', 'print the version');
  // Only the chosen command's module is loaded (`coffer help X` loads X's); every other command is a stub with its
  // name and summary, enough for `coffer --help` and for commander to reject an unknown command.
  const chosen = findCommand(argv[0] === 'help' ? argv[1] : argv[0]);
  if (argv[0] === 'help' && argv[1] !== undefined && !chosen) {
    io.err(`coffer: unknown command '${argv[1]}' (coffer --help lists the commands)\n`);
    return { kind: 'exit', code: EXIT.USAGE };
  }
  if (chosen) (await chosen.load())(program, ctx);
  else for (const e of commandTable) program.command(e.name).description(e.summary);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version are successes (exitCode 0); help shown for a missing verb (exitCode 1), an unknown
      // command or any other parse problem is a usage error.
      if ((e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') && e.exitCode === 0) {
        return { kind: 'exit', code: EXIT.OK };
      }
      return { kind: 'exit', code: EXIT.USAGE };
    }
    if (e instanceof CliUsageError || (e instanceof CofferError && e.name === 'UsageError')) {
      io.err(`coffer: ${oneLine(e.message)}\n`);
      return { kind: 'exit', code: EXIT.USAGE };
    }
    if (e instanceof CofferError) {
      io.err(`coffer: ${e.code}: ${oneLine(e.message)}\n`);
      return { kind: 'exit', code: EXIT.USAGE };
    }
    io.err(`coffer: ${describeUnexpected(e)}\n`);
    return { kind: 'exit', code: EXIT.USAGE };
  }
  return running ? { kind: 'running' } : { kind: 'exit', code };
}

/**
 * An error no command turned into a usage error: still one line and no stack (set COFFER_DEBUG=1 for the stack).
 * System errors (a port in use, a read-only or full disk, an unknown host) name their cause by code.
 */
function describeUnexpected(e: unknown): string {
  if (process.env.COFFER_DEBUG) return (e as Error)?.stack ?? String(e);
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)) {
    const where = err.hostname ?? (err.address !== undefined ? `${err.address}${err.port !== undefined ? `:${err.port}` : ''}` : err.path);
    const what = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'ENOTFOUND' ? 'host not found' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : describeFsError(err);
    return `${err.syscall ? `${err.syscall} ` : ''}${where ? `${where}: ` : ''}${what}${what.includes(err.code) ? '' : ` (${err.code})`}`;
  }
  return `unexpected error: ${oneLine((e as Error)?.message ?? String(e))}`;
}

/** package.json's version; src/cli/run.ts and the bundle in dist/cli/ both sit two levels below the package root. */
function cofferVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
