// The program level of the CLI: version, help, unknown commands and missing verbs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cli as run } from '../support/cli.js';
import { commandTable, loadAllCommands } from '../../src/cli/commands/index.js';
import { Command } from 'commander';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test('--version and -V print the package version, exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await run([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.out, `${version}\n`);
  }
});

test('--help lists every command of the table; help X shows X', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  for (const e of commandTable) assert.match(r.out, new RegExp(`^  ${e.name}\\b`, 'm'), e.name);
  const h = await run(['help', 'verify']);
  assert.equal(h.code, 0);
  assert.match(h.out, /Usage: coffer verify \[options\] <file\.\.\.>/);
  assert.match(h.out, /--collateral/);
});

test('unknown commands, help for an unknown command and missing verbs exit 2', async () => {
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'frobnicate'/);
  // The error and a pointer to the usage, not the whole help text on stderr.
  assert.doesNotMatch(unknown.err, /Usage:/);
  assert.ok(unknown.err.trim().split('\n').length <= 2, unknown.err);
  const option = await run(['verify', '--frobnicate', 'x']);
  assert.equal(option.code, 2);
  assert.match(option.err, /unknown option '--frobnicate'/);
  assert.doesNotMatch(option.err, /Usage:/);
  const help = await run(['help', 'frobnicate']);
  assert.equal(help.code, 2);
  assert.match(help.err, /unknown command 'frobnicate'/);
  assert.equal((await run([])).code, 2, 'no command at all');
  const verb = await run(['kbs-client']);
  assert.equal(verb.code, 2, 'kbs-client without a verb');
  assert.equal((await run(['kbs-client', 'frobnicate'])).code, 2);
});

test('the command table matches the commands each module registers', async () => {
  const registers = await loadAllCommands();
  const ctx = { io: { out: () => undefined, err: () => undefined }, setExit: () => undefined, keepRunning: () => undefined };
  commandTable.forEach((e, i) => {
    const p = new Command('coffer');
    registers[i]!(p, ctx);
    assert.deepEqual(p.commands.map((c) => c.name()), [e.name], `entry ${e.name} registers exactly that command`);
  });
});
