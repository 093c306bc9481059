// `npm run build`: compiles the CLI to dist/ (one ESM bundle, code-split so each command's dependencies stay lazy,
// npm packages external). bin/coffer.js runs dist/ when it is newer than every source file, else the sources
// through tsx. Compiled, a node agent like `coffer edgehub` carries no TypeScript loader (a second V8 isolate
// for the loader hooks plus the compiled module sources: ~35 MB of RSS).
import { build } from 'esbuild';
import { nodeBundle } from './esbuild-node.mjs';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist', 'cli');
rmSync(outdir, { recursive: true, force: true });
await build({
  // verify-worker: the thread `coffer verify` starts for a large batch, loaded by its own name (verify-pool.ts).
  entryPoints: { coffer: join(root, 'src/cli/main.ts'), 'verify-worker': join(root, 'src/cli/commands/verify-worker.ts') },
  ...nodeBundle,
  splitting: true,
  outdir,
  sourcemap: true,
});
// Data files the sources load beside themselves (new URL('./x.proto', import.meta.url)): the bundle's chunks all sit
// in dist/cli, so the files go there too. Two with one name would shadow each other: refuse to build.
const assets = new Map();
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.proto')) {
      if (assets.has(e.name)) throw new Error(`build: two assets named ${e.name}: ${assets.get(e.name)} and ${p}`);
      assets.set(e.name, p);
    }
  }
})(join(root, 'src'));
for (const [name, p] of assets) copyFileSync(p, join(outdir, name));
// Written last: its mtime is the build time bin/coffer.js compares the sources against.
writeFileSync(join(outdir, 'BUILT'), new Date().toISOString() + '\n');

// The dashboard (src/ui): one browser bundle plus its page and stylesheet in dist/ui, served at / by the services.
// Same options as src/attestation/dashboard/assets.ts uses when it bundles in memory from sources.
const uiOut = join(root, 'dist', 'ui');
rmSync(uiOut, { recursive: true, force: true });
mkdirSync(uiOut, { recursive: true });
await build({
  entryPoints: [join(root, 'src/ui/app.ts')], outfile: join(uiOut, 'app.js'),
  bundle: true, format: 'esm', target: 'es2022', minify: true, legalComments: 'none', platform: 'browser', logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(join(root, 'src/ui', f), join(uiOut, f));
writeFileSync(join(uiOut, 'BUILT'), new Date().toISOString() + '\n');
