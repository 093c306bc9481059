// `node scripts/bench-bundle.mjs bench/attest.ts [args]`: bundles one bench the way `npm run build` bundles the CLI
// (esbuild, npm packages external, no keepNames: the `__name` helpers tsx adds are not in what `coffer up` runs) and
// runs the bundle with plain node. Every side the bench measures (service, floor, bare verifier) runs the bundle.
import { build } from 'esbuild';
import { nodeBundle } from './esbuild-node.mjs';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/bench-bundle.mjs bench/NAME.ts [args]');
  process.exit(2);
}
const outdir = join(root, 'dist', 'bench');
const name = basename(entry).replace(/\.ts$/, '');
await build({
  entryPoints: { [name]: join(root, entry) },
  ...nodeBundle,
  outdir,
});
const r = spawnSync(process.execPath, [join(outdir, `${name}.mjs`), ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
