// Runtime handlers from containerd configs as containerd reads them: TOML with dotted and quoted keys, imports
// (globs, relative paths, nesting, cycles), the version 1/2/3 layouts; and the built-in RuntimeProfiles select on
// exactly the labels discovery publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { containerdConfigHandlers, ContainerdConfigError, runtimeHandlersOf } from '../../../src/node/discovery/containerd-config.js';
import { LABEL, runtimeLabels } from '../../../src/node/discovery/labels.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';

function dir(files: Record<string, string>): { root: string; cleanup(): void } {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-ctd-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

test('containerd 1.6 layout (version 2): table headers, quoted names, dotted keys (top level and inside the CRI table), inline tables', async () => {
  const t = dir({
    'headers.toml': `version = 2
plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runv.runtime_type = "io.containerd.runv.v1"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."kata-qemu"]
  runtime_type = "io.containerd.kata-qemu.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.'kata-qemu'.options]
  ConfigPath = "/opt/kata/configuration-qemu.toml"
`,
    'dotted.toml': `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  containerd.runtimes.runsc.runtime_type = "io.containerd.runsc.v1"
  containerd.runtimes.'crun'.options = { BinaryName = "/usr/bin/crun" }
  containerd.runtimes."nvidia" = { runtime_type = "io.containerd.runc.v2" }
`,
  });
  try {
    assert.deepEqual(await containerdConfigHandlers(path.join(t.root, 'headers.toml')), ['kata-qemu', 'runc', 'runv']);
    // the default runtime (runc) counts although dotted.toml has no table for it
    assert.deepEqual(await containerdConfigHandlers(path.join(t.root, 'dotted.toml')), ['crun', 'nvidia', 'runc', 'runsc']);
  } finally {
    t.cleanup();
  }
});

test('containerd 2.x layout (version 3) and the old version 1; the default runtime is always a handler', () => {
  assert.deepEqual(runtimeHandlersOf({ version: 3, plugins: { 'io.containerd.cri.v1.runtime': { containerd: { default_runtime_name: 'crun', runtimes: { crun: {}, 'kata-clh': {} } } } } }), ['crun', 'kata-clh']);
  // a 1.6-style table in a version 3 file is not where containerd 2 looks
  assert.deepEqual(runtimeHandlersOf({ version: 3, plugins: { 'io.containerd.grpc.v1.cri': { containerd: { runtimes: { kata: {} } } } } }), ['runc']);
  assert.deepEqual(runtimeHandlersOf({ plugins: { cri: { containerd: { runtimes: { runsc: {} } } } } }), ['runc', 'runsc']);
  assert.throws(() => runtimeHandlersOf({ version: 9 }), ContainerdConfigError);
});

test('imports: relative and absolute, globs in the file name, nested, a cycle read once; imported tables merge over the importer', async () => {
  const t = dir({
    'etc/config.toml': `version = 2
imports = ["conf.d/*.toml", "/ABS/extra.toml"]
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`,
    'etc/conf.d/10-kata.toml': `version = 2
imports = ["../config.toml", "nested/*.toml"]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
`,
    'etc/conf.d/nested/gvisor.toml': `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
runtime_type = "io.containerd.runsc.v1"
`,
    'etc/conf.d/README': 'not toml, not matched by the glob',
    'abs/extra.toml': `[plugins."io.containerd.grpc.v1.cri".containerd]
default_runtime_name = "crun"
`,
  });
  try {
    const main = path.join(t.root, 'etc/config.toml');
    const text = `version = 2\nimports = ["conf.d/*.toml", "${path.join(t.root, 'abs/extra.toml')}"]\n` + (await import('node:fs')).readFileSync(main, 'utf8').split('\n').slice(2).join('\n');
    writeFileSync(main, text);
    // runc stays (its own table), kata and runsc come through imports, crun is the default runtime set by an import
    assert.deepEqual(await containerdConfigHandlers(main), ['crun', 'kata', 'runc', 'runsc']);
  } finally {
    t.cleanup();
  }
});

test('fails closed: unreadable file, bad TOML, bad imports, too many files (never "no runtimes")', async () => {
  const t = dir({
    'bad.toml': 'version = 2\n[plugins\n',
    'badimp.toml': 'imports = "x.toml"\n',
    'missing-import.toml': 'imports = ["nope.toml"]\n',
    ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`chain${i}.toml`, `imports = ["chain${i + 1}.toml"]\n`])),
    'chain40.toml': '',
  });
  try {
    await assert.rejects(containerdConfigHandlers(path.join(t.root, 'absent.toml')), /could not be read/);
    await assert.rejects(containerdConfigHandlers(path.join(t.root, 'bad.toml')), /not valid TOML/);
    await assert.rejects(containerdConfigHandlers(path.join(t.root, 'badimp.toml')), /imports must be an array/);
    await assert.rejects(containerdConfigHandlers(path.join(t.root, 'missing-import.toml')), /nope.toml could not be read/);
    await assert.rejects(containerdConfigHandlers(path.join(t.root, 'chain0.toml')), /more than 32 config files/);
  } finally {
    t.cleanup();
  }
});

test("the RuntimeClass installer's node selectors use only labels the agent publishes", () => {
  const published = new Set<string>(Object.values(LABEL));
  for (const p of builtinRuntimeProfiles()) {
    // a node with exactly this profile's handler configured gets these runtime labels
    for (const k of Object.keys(runtimeLabels([p.spec.handler]).labels)) published.add(k);
  }
  for (const p of builtinRuntimeProfiles()) {
    const sel = p.spec.scheduling?.nodeSelector ?? {};
    for (const key of Object.keys(sel).filter((k) => k.startsWith('coffer.dev/'))) {
      assert.ok(published.has(key), `${p.metadata.name} selects on ${key}, which the agent never publishes`);
      if (key.startsWith('coffer.dev/runtime.')) assert.equal(key, `coffer.dev/runtime.${p.spec.handler}`, `${p.metadata.name}: runtime label must name its own handler`);
    }
  }
});
