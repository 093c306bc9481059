import { runCli } from './run.js';

const outcome = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
if (outcome.kind === 'exit') {
  // Exit once stdout has drained, so piped JSON is never cut short and no stray handle keeps us alive.
  process.stdout.write('', () => process.exit(outcome.code));
}
