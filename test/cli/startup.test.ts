// Start-up weight: each command loads only what it uses. Runs the real CLI (bin/coffer.js: the build when fresh,
// else the sources) with a preload that records every module loaded, and fails when `coffer verify` pulls in a
// server, database or Kubernetes client library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MIN_FILES_PER_WORKER } from '../../src/cli/commands/verify-run.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SERVER_SIDE = ['fastify', 'pg', 'better-sqlite3', '@kubernetes/client-node', 'kubernetes-models', 'prom-client', '@grpc/grpc-js'];

function loaded(args: string[]): Promise<{ code: number; stdout: string; packages: Set<string>; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-startup-'));
  const trace = join(dir, 'trace');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', join(root, 'test/support/load-trace.mjs'), join(root, 'bin/coffer.js'), ...args],
      { cwd: root, env: { ...process.env, COFFER_LOAD_TRACE: trace }, timeout: 60_000 },
      (err, stdout) => {
        try {
          const packages = new Set<string>();
          const lines = readFileSync(trace, 'utf8').split('\n');
          for (const l of lines) {
            const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(l);
            if (m) packages.add(m[1]!);
          }
          rmSync(dir, { recursive: true, force: true });
          resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, packages, lines });
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

function assertNone(packages: Set<string>, forbidden: string[], what: string): void {
  const hit = forbidden.filter((p) => packages.has(p));
  assert.deepEqual(hit, [], `${what} loaded ${hit.join(', ')}`);
}

test('the trace sees packages (the check below can fail)', async () => {
  const r = await loaded(['verify', 'samples/sgx-quote.dat', '--collateral', 'samples/collateral', '--trust-anchor', 'samples/test-pki-root.pem']);
  assert.equal(r.code, 0, r.stdout);
  assert.ok(r.packages.has('commander'), [...r.packages].join(' '));
  const manifests = await loaded(['manifests', '--help']);
  assert.ok(manifests.packages.has('kubernetes-models'), 'manifests loads kubernetes-models: the trace is live');
});

test('coffer verify of one quote loads no server, database or Kubernetes library', async () => {
  const r = await loaded(['verify', 'samples/sgx-quote.dat', '--collateral', 'samples/collateral', '--trust-anchor', 'samples/test-pki-root.pem']);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /^OK +samples\/sgx-quote.dat/);
  assertNone(r.packages, SERVER_SIDE, 'coffer verify');
});

test('a coffer verify batch on worker threads: the workers load no server, database or Kubernetes library either', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-startup-batch-'));
  try {
    const files = Array.from({ length: 2 * MIN_FILES_PER_WORKER + 1 }, (_, i) => {
      const f = join(dir, `q${i}.dat`);
      copyFileSync(join(root, 'samples/sgx-quote.dat'), f);
      return f;
    });
    const r = await loaded(['verify', '--jobs', '3', '--collateral', 'samples/collateral', '--trust-anchor', 'samples/test-pki-root.pem', ...files]);
    assert.equal(r.code, 0, r.stdout.slice(0, 500));
    if (r.lines.some((l) => l.endsWith('/src/cli/main.ts'))) {
      // From sources, each worker registers tsx's loader itself, and the trace's hooks do not reach it there.
      assertNone(r.packages, SERVER_SIDE, 'coffer verify on worker threads (main thread only)');
      t.skip('the load trace sees worker threads only when bin/coffer.js runs the build (npm run build)');
      return;
    }
    assert.ok(r.lines.some((l) => l.endsWith('/verify-worker.mjs')), 'the trace covers the worker threads (their entry module is in it)');
    assertNone(r.packages, SERVER_SIDE, 'coffer verify on worker threads');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('help and eventlog load no verifier, X.509, YAML or server library', async () => {
  for (const args of [['--help'], ['verify', '--help'], ['help', 'verify'], ['eventlog', '--help'], ['--version']]) {
    const r = await loaded(args);
    assert.equal(r.code, 0, args.join(' '));
    assertNone(r.packages, [...SERVER_SIDE, '@peculiar/x509', '@peculiar/asn1-schema', 'yaml', 'jose'], `coffer ${args.join(' ')}`);
  }
});
