import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repo root (two levels above this file). */
export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * The real vendor evidence lives beside the project in ../shared/vectors and is never copied into it.
 * A fresh clone has no ../shared: suites that need it skip with this message.
 */
export const vectorsDir = process.env.COFFER_VECTORS ?? resolve(repoRoot, '..', 'shared', 'vectors');
export const haveVectors = existsSync(join(vectorsDir, 'PROVENANCE.md'));
export const vectorsSkip: string | false = haveVectors
  ? false
  : `../shared/vectors not found at ${vectorsDir}: real-vector suite skipped (set COFFER_VECTORS to run it)`;

export function readVector(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(vectorsDir, rel)));
}
