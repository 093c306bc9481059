import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../../src/cli/run.js';
import { parseDuration } from '../../src/cli/duration.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const r = await runCli(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { r, out, err };
}

test('edgehub and controller flags are validated before anything starts', async () => {
  const bad = await run(['edgehub', '--server', 'http://127.0.0.1:1', '--listen', 'nope']);
  assert.deepEqual(bad.r, { kind: 'exit', code: 2 });
  assert.match(bad.err, /--listen 'nope' is not HOST:PORT/);
  const dur = await run(['edgehub', '--server', 'http://127.0.0.1:1', '--health-interval', '10 s']);
  assert.match(dur.err, /--health-interval '10 s' is not a positive duration/);
  const url = await run(['edgehub', '--server', 'ftp://x', '--listen', '127.0.0.1:0']);
  assert.match(url.err, /must be http:\/\/ or https:\/\//);
  const none = await run(['edgehub', '--listen', '127.0.0.1:0']);
  assert.match(none.err, /no API server/);
  const ctl = await run(['controller', '--controllers', 'autonomy,bogus', '--kubeconfig', '/dev/null']);
  assert.match(ctl.err, /unknown controller\(s\) bogus; known: autonomy/);
});

test('durations', () => {
  assert.equal(parseDuration('--x', '10s'), 10_000);
  assert.equal(parseDuration('--x', '1m30s'), 90_000);
  assert.equal(parseDuration('--x', '250ms'), 250);
  assert.throws(() => parseDuration('--x', '0s'));
  assert.throws(() => parseDuration('--x', '5'));
});
