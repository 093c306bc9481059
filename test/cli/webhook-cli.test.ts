import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { createTestCa } from '../support/tls.js';
import { runCli } from '../../src/cli/run.js';

async function run(argv: string[]) {
  let err = '';
  const r = await runCli(argv, { out: () => undefined, err: (s) => (err += s) });
  return { code: r.kind === 'exit' ? r.code : -1, err };
}

test('coffer webhook: usage errors exit 2', async () => {
  assert.equal((await run(['webhook'])).code, 2);
  assert.equal((await run(['webhook', '--cert', '/nope', '--key', '/nope'])).code, 2);
  assert.equal((await run(['webhook', '--cert', '/nope', '--key', '/nope', '--port', 'x'])).code, 2);
});

test('coffer webhook serves HTTPS, logs JSON and stops on SIGTERM', async () => {
  const ca = await createTestCa();
  const leaf = await ca.issue();
  const dir = mkdtempSync(join(tmpdir(), 'coffer-wh-cli-'));
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  const bin = new URL('../../bin/coffer.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'webhook', '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      child.stderr.on('data', (c) => {
        buf += c;
        const m = /"port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${buf}`)));
    });
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/readyz', ca: ca.certPem, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject).end();
    });
    assert.equal(status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
