import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../src/attestation/index.js';
import type { AttestationService } from '../../src/attestation/service.js';
import { chainPath, crlPath, vcekPath } from '../../src/tee/snp/collateral/kds.js';
import { world } from '../support/dcap-helpers.js';
import type { DcapWorld } from '../support/dcap-world.js';
import { fakeKds, fakePcs, type FakeUpstream } from '../support/fake-pcs.js';
import { adminKeys, fakeClock, tempStore, type AdminKeys } from '../support/service.js';
import { SnpTestPki, p384, reportFields, signReport } from '../support/snp-pki.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('collateral from Intel PCS / AMD KDS upstreams, cached in the store, through the HTTP API', () => {
  const ts = tempStore();
  let w: DcapWorld;
  let clock: ReturnType<typeof fakeClock>;
  let pcs: FakeUpstream;
  let kds: FakeUpstream;
  let adm: AdminKeys;
  const snp = { pki: new SnpTestPki('Milan', 'svc'), key: p384(), fields: reportFields({ product: 'Milan' }) };
  const apps: FastifyInstance[] = [];

  const build = async (o: { pcsUrl: string; kdsUrl: string }) => {
    const { app, service } = await buildAttestationApp({
      store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], clock: clock.now,
      upstream: { ...o, refreshIntervalMs: HOUR, timeoutMs: 2000 },
      verifyOptions: { trustAnchors: [w.pki.root.der, ...snp.pki.trustAnchors] },
    });
    apps.push(app);
    return { app, service };
  };

  let app: FastifyInstance;
  let service: AttestationService;

  before(async () => {
    w = await world();
    clock = fakeClock(w.at.getTime());
    adm = await adminKeys();
    // TCB info and QE identity valid for 30 days from the start, as Intel issues them.
    const next = new Date(w.at.getTime() + 30 * DAY);
    pcs = await fakePcs(w, { tcbInfo: (s) => void (s.nextUpdate = next), qeIdentity: (s) => void (s.nextUpdate = next) });
    const f = snp.fields;
    const leaf = snp.pki.leaf({ tcb: f.reportedTcb, chipId: f.chipId, key: snp.key });
    kds = await fakeKds(new Map([
      [vcekPath({ product: 'Milan', chipId: f.chipId, tcb: f.reportedTcb }), leaf.der],
      [chainPath('Milan', 'vcek'), snp.pki.chainPem('vcek')],
      [crlPath('Milan', 'vcek'), snp.pki.crl()],
    ]));
    ({ app, service } = await build({ pcsUrl: pcs.base, kdsUrl: kds.base }));
  });
  after(async () => {
    for (const a of apps) await a.close();
    await pcs.stop();
    await kds.stop();
    await ts.cleanup();
  });

  const attest = async (a: FastifyInstance, tee: 'sgx' | 'snp') => {
    const { nonce } = (await a.inject({ method: 'POST', url: '/v1/challenge' })).json() as { nonce: string };
    const rd = new Uint8Array(64);
    rd.set(Buffer.from(nonce, 'base64'));
    const evidence = tee === 'sgx' ? await w.quote({ version: 4, tee: 'sgx', reportData: rd }) : signReport({ ...snp.fields, reportData: rd }, snp.key.privateKey);
    return a.inject({ method: 'POST', url: '/v1/attest', payload: { tee, evidence: Buffer.from(evidence).toString('base64'), nonce } });
  };
  const asAdmin = async (a: FastifyInstance, method: 'GET' | 'POST', url: string) =>
    a.inject({ method, url, headers: { authorization: `Bearer ${await adm.token()}` } });

  test('upstream up: SGX quotes and SNP reports attest; collateral is fetched once into the store, even under concurrency', async () => {
    // Concurrent first requests share one upstream fetch per item.
    const first = await Promise.all([attest(app, 'sgx'), attest(app, 'sgx'), attest(app, 'snp'), attest(app, 'snp')]);
    for (const r of first) {
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().status, 'affirming', r.body);
    }
    const keys = (await ts.store.listCollateral()).map((e) => e.key);
    for (const k of ['pcs/sgx/tcb/00A067110000', 'pcs/sgx/qe-identity', 'pcs/pckcrl/processor', 'pcs/rootcacrl', 'kds/vcek/v1/Milan/cert_chain', 'kds/vcek/v1/Milan/crl']) {
      assert.ok(keys.includes(k), `${k} cached (have ${keys.join(', ')})`);
    }
    assert.ok(keys.some((k) => k.startsWith('kds/vcek/v1/Milan/abab')));
    const hits = pcs.hits.length + kds.hits.length;
    assert.equal(pcs.hits.length, 4);
    assert.equal(kds.hits.length, 3);
    for (const tee of ['sgx', 'snp'] as const) assert.equal((await attest(app, tee)).json().status, 'affirming');
    assert.equal(pcs.hits.length + kds.hits.length, hits, 'warm attestations read no upstream');
  });

  test('signatures checked in one batch: a tampered SGX/TDX quote, QE report or SNP report among good ones is refused alone', async () => {
    const { parseQuote } = await import('../../src/tee/dcap/quote.js');
    // Evidence for one nonce, then (optionally) one byte of a signature flipped.
    const prepare = async (tee: 'sgx' | 'tdx' | 'snp', tamper?: 'quote' | 'qe' | 'report') => {
      const { nonce } = (await app.inject({ method: 'POST', url: '/v1/challenge' })).json() as { nonce: string };
      const rd = new Uint8Array(64);
      rd.set(Buffer.from(nonce, 'base64'));
      const ev = Buffer.from(tee === 'snp' ? signReport({ ...snp.fields, reportData: rd }, snp.key.privateKey) : await w.quote({ version: 4, tee, reportData: rd }));
      if (tamper === 'report') ev[0x2a0 + 3] ^= 1; // SEV-SNP: the signature's r component starts at 0x2A0
      if (tamper === 'quote' || tamper === 'qe') {
        const q = parseQuote(ev);
        ev[ev.indexOf(Buffer.from(tamper === 'quote' ? q.signature : q.qeReportSignature)) + 7] ^= 1;
      }
      return { tee, evidence: ev.toString('base64'), nonce };
    };
    const cases = [
      ['sgx'], ['sgx', 'quote'], ['snp'], ['tdx'], ['sgx', 'qe'], ['snp', 'report'], ['tdx', 'quote'], ['sgx'], ['snp'], ['tdx'],
    ] as const;
    const bodies = [];
    for (const [tee, tamper] of cases) bodies.push(await prepare(tee, tamper));
    const batch = service.crypto!;
    const before = { ...batch.stats };
    const rs = await Promise.all(bodies.map((payload) => app.inject({ method: 'POST', url: '/v1/attest', payload })));
    const flushes = batch.stats.flushes - before.flushes;
    assert.ok(batch.stats.ops - before.ops > flushes, `batched: ${batch.stats.ops - before.ops} operations in ${flushes} batches`);
    const jwks = createLocalJWKSet((await app.inject({ url: '/.well-known/jwks.json' })).json());
    const want = { quote: 'QUOTE_SIGNATURE_INVALID', qe: 'QE_REPORT_SIGNATURE_INVALID', report: 'REPORT_SIGNATURE_INVALID' } as const;
    for (const [i, [tee, tamper]] of cases.entries()) {
      const r = rs[i];
      if (!tamper) {
        assert.equal(r.statusCode, 200, r.body);
        const { payload } = await jwtVerify(r.json().token, jwks, { currentDate: new Date(clock.now()) });
        assert.equal(payload.eat_nonce, bodies[i].nonce, 'each token answers its own request');
        assert.equal((payload.submods as Record<string, Record<string, unknown>>)[tee]['ear.status'], 'affirming');
        continue;
      }
      assert.equal(r.statusCode, 422, r.body);
      assert.deepEqual(r.json().errors.map((e: { code: string }) => e.code), [want[tamper]], r.body);
      // The nonce was spent on the attempt: sent again, the same evidence gets 409, not a second try.
      assert.equal((await app.inject({ method: 'POST', url: '/v1/attest', payload: bodies[i] })).statusCode, 409);
    }
  });

  test('refresh schedule: nothing is due right after a fetch; after the interval every item is re-fetched', async () => {
    assert.deepEqual(await service.upstream!.refresh(), []);
    clock.advance(HOUR + 1000);
    const r = await service.upstream!.refresh();
    assert.equal(r.length, 10); // SGX (4), SNP (3) and, since the batch test, TDX (3)
    assert.ok(r.every((x) => x.ok), JSON.stringify(r));
    const st = (await asAdmin(app, 'GET', '/v1/admin/collateral')).json() as { key: string; fetchedAt: string; stale: string | null }[];
    assert.ok(st.every((s) => s.fetchedAt === new Date(clock.now()).toISOString() && s.stale === null));
  });

  test('upstream down: served from the cache, also by a fresh replica that only has the store', async () => {
    await pcs.stop();
    await kds.stop();
    for (const tee of ['sgx', 'snp'] as const) assert.equal((await attest(app, tee)).json().status, 'affirming');
    // A new service instance (a restart or a second replica) with the dead upstream URLs: the store serves.
    const fresh = await build({ pcsUrl: pcs.base, kdsUrl: kds.base });
    for (const tee of ['sgx', 'snp'] as const) {
      const r = await attest(fresh.app, tee);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().status, 'affirming');
    }
    const refresh = (await asAdmin(fresh.app, 'POST', '/v1/admin/collateral/refresh')).json() as { ok: boolean; error?: string }[];
    assert.equal(refresh.length, 7);
    assert.ok(refresh.every((x) => !x.ok && /failed/.test(x.error ?? '')), JSON.stringify(refresh));
    const st = (await asAdmin(fresh.app, 'GET', '/v1/admin/collateral')).json() as { lastError: string | null }[];
    assert.ok(st.every((s) => s.lastError));
  });

  test('refresh overdue: the result is lowered to warning with COLLATERAL_STALE in the response and the EAR', async () => {
    clock.advance(2 * HOUR + 1000);
    await service.upstream!.refresh();
    for (const tee of ['sgx', 'snp'] as const) {
      const r = await attest(app, tee);
      assert.equal(r.statusCode, 200, r.body);
      const body = r.json();
      assert.equal(body.status, 'warning');
      const f = body.failures.find((x: { code: string }) => x.code === 'COLLATERAL_STALE');
      assert.ok(f, r.body);
      assert.match(f.message, /not refreshed since/);
      const jwks = createLocalJWKSet((await app.inject({ url: '/.well-known/jwks.json' })).json());
      const { payload } = await jwtVerify(body.token, jwks, { currentDate: new Date(clock.now()) });
      assert.equal((payload.submods as Record<string, Record<string, unknown>>)[tee]['ear.status'], 'warning');
    }
  });

  test('past the TCB info nextUpdate: still a rejection by the verifier (COLLATERAL_EXPIRED), never a pass', async () => {
    clock.advance(31 * DAY);
    const r = await attest(app, 'sgx');
    assert.equal(r.statusCode, 422, r.body);
    assert.equal(r.json().type, 'https://coffer.dev/problems/evidence-rejected');
    assert.match(r.json().detail, /COLLATERAL_EXPIRED/);
  });
});
