// Start-up weight: each command loads only what it uses. Runs the real CLI (bin/coffer.js: the build when fresh,
// else the sources) with a preload that records every module loaded, and fails when `coffer verify` pulls in a
// server, database or Kubernetes client library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SERVER_SIDE = ['fastify', 'pg', 'better-sqlite3', '@kubernetes/client-node', 'kubernetes-models', 'prom-client', '@grpc/grpc-js'];

function loaded(args: string[]): Promise<{ code: number; stdout: string; packages: Set<string> }> {
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
          for (const l of readFileSync(trace, 'utf8').split('\n')) {
            const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(l);
            if (m) packages.add(m[1]!);
          }
          rmSync(dir, { recursive: true, force: true });
          resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, packages });
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

test('help and eventlog load no verifier, X.509, YAML or server library', async () => {
  for (const args of [['--help'], ['verify', '--help'], ['help', 'verify'], ['eventlog', '--help'], ['--version']]) {
    const r = await loaded(args);
    assert.equal(r.code, 0, args.join(' '));
    assertNone(r.packages, [...SERVER_SIDE, '@peculiar/x509', '@peculiar/asn1-schema', 'yaml', 'jose'], `coffer ${args.join(' ')}`);
  }
});
