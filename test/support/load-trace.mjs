// Preload (`node --import ./test/support/load-trace.mjs`) that appends every module the process loads to the file
// named by $COFFER_LOAD_TRACE, one URL or path a line: ES modules through a resolve hook (it runs on the loader
// thread), CommonJS ones from require.cache at exit. Used by test/cli/startup.test.ts and bench/cli.ts.
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';

const out = process.env.COFFER_LOAD_TRACE;
if (out) {
  register('./load-trace-hooks.mjs', import.meta.url, { data: { out } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => appendFileSync(out, Object.keys(require.cache).join('\n') + '\n'));
}
