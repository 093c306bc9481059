// `npm run build`: compiles the CLI to dist/ (one ESM bundle, code-split so each command's dependencies stay lazy,
// npm packages external). bin/coffer.js runs dist/ when it is newer than every source file, else the sources
// through tsx. Compiled, a node agent like `coffer edgehub` carries no TypeScript loader (a second V8 isolate
// for the loader hooks plus the compiled module sources: ~35 MB of RSS).
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'cli');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { coffer: join(root, 'src/cli/main.ts') },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outdir,
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  logLevel: 'warning',
});
// Written last: its mtime is the build time bin/coffer.js compares the sources against.
writeFileSync(join(outdir, 'BUILT'), new Date().toISOString() + '\n');
