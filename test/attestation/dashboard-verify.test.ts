import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServices } from '../../src/cli/commands/up.js';
import { mintAdminToken } from '../../src/cli/data-dir.js';
import { world } from '../support/dcap-helpers.js';
import { fakePcs } from '../support/fake-pcs.js';

test("dashboard Verify API without collateral uses the service's upstream collateral cache, like /v1/attest; nothing is audited", async () => {
  const w = await world();
  const pcs = await fakePcs(w);
  const dir = mkdtempSync(join(tmpdir(), 'coffer-uiverify-'));
  writeFileSync(join(dir, 'root.der'), w.pki.root.der);
  const ctx = { io: { out: () => {}, err: () => {} }, setExit: () => {}, keepRunning: () => {} };
  const s = await startServices('attestation', { port: '0', host: '127.0.0.1', data: join(dir, 'data'), pcsUrl: pcs.base, kdsUrl: 'off', trustAnchor: [join(dir, 'root.der')] }, ctx, { COFFER_KEK: '' });
  try {
    const viewer = await mintAdminToken(join(dir, 'data/keys/admin.key'), { ttlSeconds: 600, subject: 'ops', viewer: true });
    const quote = await w.quote({ version: 3, tee: 'sgx', reportData: new Uint8Array(64) });
    const auditBefore = (await s.store.listAudit({ limit: 1000 })).length;
    const r = await fetch(`${s.url}/v1/dashboard/verify`, {
      method: 'POST', headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ evidence: Buffer.from(quote).toString('base64') }),
    });
    const body = (await r.json()) as { verified: boolean; tee: string; tcbStatus: string; checks: { name: string; ok: boolean | null }[]; appraisal: { status: string } };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.verified, true, JSON.stringify(body.checks));
    assert.equal(body.tee, 'sgx');
    assert.equal(body.tcbStatus, 'UpToDate');
    assert.ok(!body.checks.some((c) => c.name === 'Collateral bundle'), 'no caller collateral: the cache served');
    assert.ok((await s.store.getCollateral('pcs/sgx/tcb/00A067110000'))?.source.startsWith(pcs.base));
    assert.equal((await s.store.listAudit({ limit: 1000 })).length, auditBefore, 'a dashboard verification is not an attestation');
  } finally {
    await s.stop();
    await pcs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
