import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../src/attestation/index.js';
import { chainPath, crlPath } from '../../src/tee/snp/collateral/kds.js';
import { fakeKds, fakePcs, type FakeUpstream } from '../support/fake-pcs.js';
import { fakeClock, tempStore } from '../support/service.js';
import { pki, snpComposite, SNP_AT, tdxComposite } from '../support/azure-composite.js';
import { world } from '../support/dcap-helpers.js';

/**
 * Composite (Azure CVM) evidence gets its hardware report's collateral from the service's upstreams: AMD KDS (ASK
 * chain and the ARK CRL, which the service requires) for az-snp-vtpm, Intel PCS for az-tdx-vtpm. Local HTTP servers
 * stand in for KDS and PCS, serving the project's generated test PKIs.
 */
const HOUR = 3_600_000;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function service(o: { kds?: FakeUpstream; pcs?: FakeUpstream; at: Date; trustAnchors: Uint8Array[]; snp?: Record<string, unknown> }) {
  const ts = tempStore();
  const clock = fakeClock(o.at.getTime());
  const { app, service } = await buildAttestationApp({
    store: ts.store, adminKeys: [], clock: clock.now,
    upstream: { pcsUrl: o.pcs?.base ?? false, kdsUrl: o.kds?.base ?? false, refreshIntervalMs: HOUR, timeoutMs: 2000 },
    verifyOptions: { trustAnchors: o.trustAnchors, ...(o.snp ? { snp: o.snp } : {}) },
  });
  cleanups.push(async () => {
    await app.close();
    await ts.cleanup();
  });
  return { app, service, clock, store: ts.store };
}

async function attest(app: FastifyInstance, tee: string, make: (nonce: Uint8Array) => Promise<Uint8Array> | Uint8Array) {
  const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json() as { nonce: string };
  const evidence = await make(new Uint8Array(Buffer.from(nonce, 'base64')));
  return app.inject({ method: 'POST', url: '/v1/attest', payload: { tee, evidence: Buffer.from(evidence).toString('base64'), nonce } });
}

const snpEvidence = (nonce: Uint8Array) => snpComposite({ extraData: nonce }).json;

test('az-snp-vtpm: the ASK chain and ARK CRL come from KDS into the store; refresh overdue → COLLATERAL_STALE warning', async () => {
  const kds = await fakeKds(new Map([[chainPath('Milan', 'vcek'), pki.chainPem('vcek')], [crlPath('Milan', 'vcek'), pki.crl()]]));
  cleanups.push(() => kds.stop());
  const s = await service({ kds, at: SNP_AT, trustAnchors: pki.trustAnchors });
  const r = await attest(s.app, 'az-snp-vtpm', snpEvidence);
  assert.equal(r.statusCode, 200, r.body);
  assert.notEqual(r.json().status, 'contraindicated', r.body);
  assert.deepEqual(kds.hits.sort(), [chainPath('Milan', 'vcek'), crlPath('Milan', 'vcek')].sort());
  const keys = (await s.store.listCollateral()).map((e) => e.key).sort();
  assert.deepEqual(keys, [`kds${chainPath('Milan', 'vcek')}`, `kds${crlPath('Milan', 'vcek')}`].sort());
  // Warm: served from memory, KDS not asked again.
  assert.equal((await attest(s.app, 'az-snp-vtpm', snpEvidence)).statusCode, 200);
  assert.equal(kds.hits.length, 2);
  // KDS goes away and nothing is refreshed for longer than interval + grace: still verified, but only a warning.
  await kds.stop();
  s.clock.advance(2 * HOUR + 1000);
  await s.service.upstream!.refresh();
  const stale = await attest(s.app, 'az-snp-vtpm', snpEvidence);
  assert.equal(stale.statusCode, 200, stale.body);
  assert.equal(stale.json().status, 'warning');
  assert.ok(stale.json().failures.some((f: { code: string; message: string }) => f.code === 'COLLATERAL_STALE' && /kds.*crl/.test(f.message)), stale.body);
});

test('az-snp-vtpm and snp: no CRL anywhere (KDS has none) → rejected with COLLATERAL_MISSING, audited', async () => {
  const kds = await fakeKds(new Map([[chainPath('Milan', 'vcek'), pki.chainPem('vcek')]]));
  cleanups.push(() => kds.stop());
  const s = await service({ kds, at: SNP_AT, trustAnchors: pki.trustAnchors });
  const r = await attest(s.app, 'az-snp-vtpm', snpEvidence);
  assert.equal(r.statusCode, 422, r.body);
  assert.equal(r.json().errors[0].code, 'COLLATERAL_MISSING', r.body);
  assert.ok(kds.hits.includes(crlPath('Milan', 'vcek')), 'the CRL was asked for');
  // With KDS off and the chain configured but no CRL, the same: the service never skips revocation (plain snp too).
  const off = await service({ at: SNP_AT, trustAnchors: pki.trustAnchors, snp: { certs: [pki.chainPem()] } });
  const r2 = await attest(off.app, 'az-snp-vtpm', snpEvidence);
  assert.equal(r2.statusCode, 422, r2.body);
  assert.equal(r2.json().errors[0].code, 'COLLATERAL_MISSING', r2.body);
  // Given the CRL, the same service accepts it: the CRL was the only thing missing.
  const withCrl = await service({ at: SNP_AT, trustAnchors: pki.trustAnchors, snp: { certs: [pki.chainPem()], crls: [pki.crl()] } });
  assert.equal((await attest(withCrl.app, 'az-snp-vtpm', snpEvidence)).statusCode, 200);
  const audit = await s.store.listAudit({ action: 'attest', limit: 10 });
  assert.equal(audit[0].result, 'rejected');
  assert.match(JSON.stringify(audit[0].details), /COLLATERAL_MISSING/);
});

test('az-tdx-vtpm: the TD quote\'s TCB info, QE identity and CRLs come from PCS into the store', async () => {
  const w = await world();
  const pcs = await fakePcs(w);
  cleanups.push(() => pcs.stop());
  const s = await service({ pcs, at: w.at, trustAnchors: w.trustAnchors });
  const r = await attest(s.app, 'az-tdx-vtpm', async (nonce) => (await tdxComposite({ extraData: nonce })).json);
  assert.equal(r.statusCode, 200, r.body);
  assert.notEqual(r.json().status, 'contraindicated', r.body);
  const keys = (await s.store.listCollateral()).map((e) => e.key);
  assert.ok(keys.some((k) => /tdx.*tcb/i.test(k)), keys.join(' '));
  assert.ok(pcs.hits.some((h) => h.startsWith('/tdx/certification/v4/tcb')), pcs.hits.join(' '));
  // Without PCS (and no collateral configured) the TD quote cannot be checked: a rejection, not a pass.
  const off = await service({ at: w.at, trustAnchors: w.trustAnchors });
  const r2 = await attest(off.app, 'az-tdx-vtpm', async (nonce) => (await tdxComposite({ extraData: nonce })).json);
  assert.equal(r2.statusCode, 422, r2.body);
});
