#!/usr/bin/env node
// Runs the compiled CLI (dist/cli, from `npm run build`) when it is newer than every file under src/, otherwise
// the TypeScript sources through tsx's ESM loader: a stale build is never run, and no build step is needed while
// developing. COFFER_TSX=1 forces the sources.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = `${root}dist/cli/BUILT`;

function newestSource(dir) {
  let newest = statSync(dir).mtimeMs; // a deleted or renamed file shows only in its directory's mtime
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

if (process.env.COFFER_TSX !== '1' && existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource(`${root}src`)) {
  await import('../dist/cli/coffer.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
