// bin/coffer.js runs the compiled dist/ only while it is newer than every source file; otherwise the sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));

test('bin prefers a fresh build, falls back to the sources when any source is newer or COFFER_TSX=1', () => {
  const root = mkdtempSync(join(tmpdir(), 'coffer-bin-'));
  try {
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'src/cli'), { recursive: true });
    mkdirSync(join(root, 'dist/cli'), { recursive: true });
    copyFileSync(join(repo, 'bin/coffer.js'), join(root, 'bin/coffer.js'));
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    writeFileSync(join(root, 'src/cli/main.ts'), "const from: string = 'sources';\nconsole.log(from);\n");
    writeFileSync(join(root, 'dist/cli/coffer.mjs'), "console.log('dist');\n");
    const run = (env: Record<string, string> = {}) => execFileSync(process.execPath, [join(root, 'bin/coffer.js')], { env: { ...process.env, ...env } }).toString().trim();
    const t0 = Date.now() / 1000;
    for (const p of ['src/cli/main.ts', 'src/cli', 'src']) utimesSync(join(root, p), t0 - 100, t0 - 100);
    assert.equal(run(), 'sources', 'no build stamp: sources');
    writeFileSync(join(root, 'dist/cli/BUILT'), 'now\n');
    utimesSync(join(root, 'dist/cli/BUILT'), t0 - 50, t0 - 50);
    assert.equal(run(), 'dist', 'build newer than the sources');
    assert.equal(run({ COFFER_TSX: '1' }), 'sources');
    utimesSync(join(root, 'src/cli/main.ts'), t0, t0);
    assert.equal(run(), 'sources', 'a source edited after the build');
    utimesSync(join(root, 'src/cli/main.ts'), t0 - 100, t0 - 100);
    utimesSync(join(root, 'src/cli'), t0, t0);
    assert.equal(run(), 'sources', 'a file added or removed after the build (directory mtime)');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
