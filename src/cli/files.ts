import { readFile, stat } from 'node:fs/promises';
import { CliUsageError } from './context.js';
import { readFileCapped } from '../tee/common/read-capped.js';
import { UsageError } from '../tee/common/errors.js';

/** Reads a file the user named; a missing or unreadable file is a usage/I-O error (exit 2), not a rejection. */
export async function readUserFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Checks that a user-named path exists (file or directory) before a verifier opens it. */
export async function statUserPath(path: string, what: string): Promise<void> {
  try {
    await stat(path);
  } catch (e) {
    throw new CliUsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Reads a file the user named, refusing one over `maxBytes` (one line naming the file and the cap, exit 2)
 * before it is read: every input file of a one-shot command is bounded.
 */
export async function readCappedUserFile(path: string, what: string, maxBytes: number): Promise<Uint8Array> {
  try {
    return await readFileCapped(path, maxBytes, what);
  } catch (e) {
    if (e instanceof UsageError) throw new CliUsageError(e.message);
    throw new CliUsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
