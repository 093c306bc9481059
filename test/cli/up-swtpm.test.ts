import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startServices } from '../../src/cli/commands/up.js';
import { captureContext, cli } from '../support/cli.js';
import { startSwtpm, swtpmSkip } from '../support/swtpm.js';

test('coffer up --dev --swtpm on: a live swtpm; kbs-client --tee tpm attests with TPM quotes from it, a foreign TPM is refused', { skip: swtpmSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-upswtpm-'));
  const data = join(dir, 'data');
  const ctx = captureContext();
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, dev: true, swtpm: 'on', pcsUrl: 'off', kdsUrl: 'off' }, ctx, {});
  const other = await startSwtpm();
  try {
    const endpoint = join(data, 'swtpm.json');
    assert.match(ctx.out(), /dev TPM \(swtpm\) +127\.0\.0\.1:\d+, AK pinned/);
    assert.equal(JSON.parse(readFileSync(endpoint, 'utf8')).host, '127.0.0.1');
    const r = await cli(['kbs-client', '--url', s.url, 'attest', '--tee', 'tpm', '--swtpm', endpoint]);
    assert.equal(r.code, 0, r.err);
    const claims = decodeJwt(r.out.trim()) as { submods: { cpu0: Record<string, unknown> } };
    const sub = claims.submods.cpu0;
    assert.notEqual(sub['ear.status'], 'contraindicated', JSON.stringify(sub['ear.veraison.policy-claims']));
    const ev = sub['ear.veraison.annotated-evidence'] as { coffer: { tee: string; platform: Record<string, string>; measurements: Record<string, string> } };
    assert.equal(ev.coffer.tee, 'tpm');
    assert.equal(ev.coffer.platform.akTrust, 'pinned');
    assert.ok(ev.coffer.measurements.pcrsha256_7, 'quoted PCRs reach the claims');
    // Quotes by another TPM (another AK) do not verify against the pinned AK.
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ host: '127.0.0.1', port: other.port }));
    const bad = await cli(['kbs-client', '--url', s.url, 'attest', '--tee', 'tpm', '--swtpm', join(dir, 'other.json')]);
    assert.equal(bad.code, 1, bad.out + bad.err);
    assert.match(bad.err, /AttestationError|signature|AK/i);
    assert.equal((await cli(['kbs-client', '--url', s.url, 'attest', '--tee', 'tpm'])).code, 2);
  } finally {
    await other.stop();
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
