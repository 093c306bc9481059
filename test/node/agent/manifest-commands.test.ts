// Every Coffer container in the rendered manifests runs a command and flags the CLI really has (the agent
// DaemonSets' `coffer agent ...` lines included): walks commander's tree the way parsing would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, type Option } from 'commander';
import { loadAllCommands } from '../../../src/cli/commands/index.js';
import { buildManifests } from '../../../src/k8s/manifests/render.js';

async function program(): Promise<Command> {
  const p = new Command('coffer');
  const ctx = { io: { out: () => undefined, err: () => undefined }, setExit: () => undefined, keepRunning: () => undefined };
  for (const register of await loadAllCommands()) register(p, ctx);
  return p;
}

function checkArgs(root: Command, args: string[]): string[] {
  const problems: string[] = [];
  let cmd = root;
  let i = 0;
  for (; i < args.length && !args[i]!.startsWith('-'); i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i]);
    if (!sub) {
      problems.push(`no command '${args.slice(0, i + 1).join(' ')}'`);
      return problems;
    }
    cmd = sub;
  }
  const known = new Map<string, Option>();
  for (let c: Command | null = cmd; c; c = c.parent) for (const o of c.options as readonly Option[]) if (o.long) known.set(o.long, o);
  for (; i < args.length; i++) {
    const [flag] = args[i]!.split('=');
    const opt = known.get(flag!);
    if (!opt) problems.push(`'${args.slice(0, 2).join(' ')}': unknown flag ${flag}`);
    else if ((opt.required || opt.optional) && !args[i]!.includes('=')) i++;
  }
  return problems;
}

test('rendered manifests only run coffer commands and flags that exist', async () => {
  const root = await program();
  const seen: string[] = [];
  for (const file of buildManifests()) {
    for (const obj of file.objects as any[]) {
      const spec = obj.spec?.template?.spec;
      for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
        if (!String(c.image).includes('coffer') || !c.args) continue;
        seen.push(c.args.slice(0, 2).join(' '));
        assert.deepEqual(checkArgs(root, c.args), [], `${obj.metadata.name}/${c.name}: ${c.args.join(' ')}`);
      }
    }
  }
  assert.ok(seen.includes('agent --host-sys'), seen.join(', '));
  assert.ok(seen.includes('agent sgx-device-plugin'), seen.join(', '));
  assert.deepEqual(checkArgs(root, ['agent', 'quote-helper', '--socket-dir', '/x', '--bogus']), ["'agent quote-helper': unknown flag --bogus"]);
  assert.deepEqual(checkArgs(root, ['agent', 'nope']), ["no command 'agent nope'"]);
});
