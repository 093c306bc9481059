import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServices } from '../../src/cli/commands/up.js';
import { runCli } from '../../src/cli/run.js';
import { world } from '../support/dcap-helpers.js';
import { fakePcs } from '../support/fake-pcs.js';

test('coffer attestation --pcs-url --trust-anchor: an SGX quote attests over HTTP with collateral from a loopback PCS', async () => {
  const w = await world();
  const pcs = await fakePcs(w);
  const dir = mkdtempSync(join(tmpdir(), 'coffer-upcol-'));
  writeFileSync(join(dir, 'root.der'), w.pki.root.der);
  let out = '';
  const ctx = { io: { out: (s: string) => void (out += s), err: () => {} }, setExit: () => {}, keepRunning: () => {} };
  const s = await startServices(
    'attestation',
    { port: '0', host: '127.0.0.1', data: join(dir, 'data'), pcsUrl: pcs.base, kdsUrl: 'off', collateralRefreshMinutes: '5', trustAnchor: [join(dir, 'root.der')] },
    ctx,
    { COFFER_KEK: '' },
  );
  try {
    assert.match(out, new RegExp(`collateral +PCS ${pcs.base}, KDS off, cached in the store, refresh every 5 min`));
    const { nonce } = (await (await fetch(`${s.url}/v1/challenge`, { method: 'POST' })).json()) as { nonce: string };
    const rd = new Uint8Array(64);
    rd.set(Buffer.from(nonce, 'base64'));
    const quote = await w.quote({ version: 3, tee: 'sgx', reportData: rd });
    const r = await fetch(`${s.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tee: 'sgx', evidence: Buffer.from(quote).toString('base64'), nonce }) });
    const body = (await r.json()) as { status: string };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'affirming');
    assert.ok((await s.store.getCollateral('pcs/sgx/tcb/00A067110000'))?.source.startsWith(pcs.base));
  } finally {
    await s.stop();
    await pcs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad upstream flags are usage errors (exit 2)', async () => {
  for (const args of [['--pcs-url', 'ftp://x'], ['--kds-url', 'nope'], ['--collateral-refresh-minutes', 'soon']]) {
    let err = '';
    const r = await runCli(['attestation', '--port', '0', '--data', join(tmpdir(), 'coffer-never'), ...args], { out: () => {}, err: (s) => void (err += s) });
    assert.deepEqual(r, { kind: 'exit', code: 2 }, err);
    assert.match(err, new RegExp(args[0]));
  }
});
