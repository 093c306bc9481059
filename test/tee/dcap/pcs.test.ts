import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVerifierRegistry } from '../../../src/tee/index.js';
import { verifyEvidenceWith } from '../../../src/tee/verify-evidence.js';
import { decodePcsResponse, PcsClient, PcsCollateralProvider, INTEL_ROOT_CA_CRL_URL } from '../../../src/tee/dcap/pcs.js';
import { world, codeOf } from '../../support/dcap-helpers.js';
import { fakePcs } from '../../support/fake-pcs.js';

test('PCS fetcher: SGX and TDX quotes verify with collateral fetched from a loopback PCS (v4 paths, issuer-chain headers)', async () => {
  const w = await world();
  const pcs = await fakePcs(w);
  try {
    const provider = new PcsCollateralProvider({ baseUrl: `${pcs.base}/` });
    const reg = createVerifierRegistry();
    for (const tee of ['sgx', 'tdx'] as const) {
      const quote = await w.quote({ version: 4, tee });
      const r = await verifyEvidenceWith(reg, quote, { tee, at: w.at, trustAnchors: w.trustAnchors, dcap: { provider } });
      assert.equal(r.verified, true, JSON.stringify(r.errors));
      assert.equal(r.tcbStatus, 'UpToDate');
    }
    assert.ok(pcs.hits.includes('/sgx/certification/v4/tcb?fmspc=00A067110000'));
    assert.ok(pcs.hits.includes('/tdx/certification/v4/qe/identity'));
    assert.ok(pcs.hits.includes('/sgx/certification/v4/pckcrl?ca=processor&encoding=der'));
    assert.ok(pcs.hits.includes('/sgx/certification/v4/pckcrl?ca=platform&encoding=der'));
    assert.ok(pcs.hits.includes('/sgx/certification/v4/rootcacrl'));
  } finally {
    await pcs.stop();
  }
});

test('PCS fetcher: Intel base URL takes the Root CA CRL from its distribution point; a PCCS base from rootcacrl', () => {
  assert.equal(new PcsClient().url({ kind: 'rootcacrl' }), INTEL_ROOT_CA_CRL_URL);
  assert.equal(new PcsClient({ baseUrl: 'https://pccs:8081/' }).url({ kind: 'rootcacrl' }), 'https://pccs:8081/sgx/certification/v4/rootcacrl');
  assert.equal(new PcsClient({ baseUrl: 'https://pccs:8081' }).url({ kind: 'tcb', tee: 'tdx', fmspc: 'B0C06F000000' }), 'https://pccs:8081/tdx/certification/v4/tcb?fmspc=B0C06F000000');
});

test('PCS fetcher: unknown FMSPC (404), a dead upstream, a missing issuer-chain header and a non-JSON body are typed rejections', async () => {
  const w = await world();
  const reg = createVerifierRegistry();
  const quote = await w.quote({ version: 4, tee: 'sgx' });
  const verifyWith = (provider: PcsCollateralProvider) => verifyEvidenceWith(reg, quote, { tee: 'sgx', at: w.at, trustAnchors: w.trustAnchors, dcap: { provider } });

  const fetch404: PcsClient = new PcsClient({ baseUrl: 'http://127.0.0.1:1', fetch: async () => ({ status: 404, headers: new Headers(), arrayBuffer: async () => new ArrayBuffer(0) }) });
  const r404 = await verifyWith(new PcsCollateralProvider(fetch404));
  assert.equal(codeOf(r404), 'COLLATERAL_MISSING');
  assert.match(r404.errors[0].message, /HTTP 404/);

  const dead = await verifyWith(new PcsCollateralProvider({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 }));
  assert.equal(codeOf(dead), 'PCS_FETCH_FAILED');

  const c = await w.collateral('sgx');
  const body = new TextEncoder().encode(`{"tcbInfo":${Buffer.from(c.tcbInfo.body)},"signature":"${Buffer.from(c.tcbInfo.signature).toString('hex')}"}`);
  assert.throws(() => decodePcsResponse({ kind: 'tcb', tee: 'sgx', fmspc: '00A067110000' }, { body }), { code: 'COLLATERAL_INVALID' });
  assert.throws(() => decodePcsResponse({ kind: 'qe', tee: 'sgx' }, { body: new TextEncoder().encode('<html>'), issuerChain: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n' }), {
    code: 'COLLATERAL_INVALID',
  });
  assert.throws(() => decodePcsResponse({ kind: 'rootcacrl' }, { body: new TextEncoder().encode('not a crl') }), { code: 'COLLATERAL_INVALID' });
  // The exact signed bytes survive: the verifier checks Intel's signature over them.
  const item = decodePcsResponse({ kind: 'tcb', tee: 'sgx', fmspc: '00A067110000' }, { body, issuerChain: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n' });
  assert.deepEqual(Buffer.from(item.signed!.body), Buffer.from(c.tcbInfo.body));
  assert.equal(item.nextUpdate?.toISOString(), w.pki.to.toISOString());
});
