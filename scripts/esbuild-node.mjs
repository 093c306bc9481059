// The esbuild options every bundle of Coffer's own code shares (the CLI in build.mjs, a bench in bench-bundle.mjs):
// Node 20 ESM, npm packages external, `.mjs` output. One place, so a bench bundle is built the way the CLI is.
export const nodeBundle = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
};
