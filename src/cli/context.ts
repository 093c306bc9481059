import type { Command } from 'commander';

/** What a command may do to the outside world; tests pass their own to capture output. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

/** Exit status contract shared by all one-shot commands. */
export const EXIT = { OK: 0, REJECTED: 1, USAGE: 2 } as const;

/** A usage or I/O problem (missing file, bad flag value): exit 2 with the message. */
export class CliUsageError extends Error {}

export interface CommandContext {
  io: CliIO;
  /** One-shot commands report their exit status here; long-running ones call `keepRunning()` instead. */
  setExit(code: number): void;
  keepRunning(): void;
}

export type RegisterCommand = (program: Command, ctx: CommandContext) => void;
