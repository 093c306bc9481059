import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { VerifierRegistry } from '../../../src/tee/registry.js';
import { verifyEvidenceWith } from '../../../src/tee/verify-evidence.js';
import { SnpVerifier } from '../../../src/tee/snp/verifier.js';
import { KdsProvider, vcekPath, chainPath, crlPath } from '../../../src/tee/snp/collateral/kds.js';
import { DirKdsCache } from '../../../src/tee/snp/collateral/dir-cache.js';
import { openSnpCollateral } from '../../../src/tee/snp/collateral/open.js';
import { CERT_GUIDS, serializeCertTable } from '../../../src/tee/snp/abi/cert-table.js';
import type { ProductLine } from '../../../src/tee/snp/abi/product.js';
import { SnpTestPki, reportFields, signReport, p384 } from '../../support/snp-pki.js';
import { parseReport } from '../../../src/tee/snp/abi/report.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';

const AT = new Date('2025-06-01Z');

/** A loopback stand-in for kdsintf.amd.com serving the KDS URL layout from the test PKI. */
async function fakeKds(routes: Map<string, Uint8Array>, status?: number) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const body = routes.get(req.url ?? '');
    if (status) res.writeHead(status).end();
    else if (body) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(body));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  after(() => new Promise<void>((r) => server.close(() => r())));
  return { base: `http://127.0.0.1:${port}`, hits };
}

function fixture(product: ProductLine) {
  const pki = new SnpTestPki(product);
  const fields = reportFields({ product });
  const key = p384();
  const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const evidence = signReport(fields, key.privateKey);
  const routes = new Map<string, Uint8Array>([
    [vcekPath({ product, chipId: fields.chipId, tcb: fields.reportedTcb }), leaf.der],
    [chainPath(product, 'vcek'), pki.chainPem('vcek')],
    [crlPath(product, 'vcek'), pki.crl()],
  ]);
  return { pki, fields, evidence, routes };
}

const verifyWith = (evidence: Uint8Array, anchors: Uint8Array[], snp: Record<string, unknown>, v = new SnpVerifier()) =>
  verifyEvidenceWith(new VerifierRegistry([v]), evidence, { at: AT, trustAnchors: anchors, snp });

test('KDS URL layout: 64-byte hwid for Milan/Genoa, 8-byte hwid and fmcSPL first for Turin', () => {
  const m = reportFields({ product: 'Milan' });
  assert.equal(
    vcekPath({ product: 'Milan', chipId: m.chipId, tcb: m.reportedTcb }),
    `/vcek/v1/Milan/${'ab'.repeat(64)}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
  );
  const t = reportFields({ product: 'Turin' });
  assert.equal(
    vcekPath({ product: 'Turin', chipId: t.chipId, tcb: t.reportedTcb }),
    `/vcek/v1/Turin/${'ab'.repeat(8)}?fmcSPL=1&blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
  );
  assert.equal(chainPath('Genoa', 'vlek'), '/vlek/v1/Genoa/cert_chain');
  assert.equal(crlPath('Genoa', 'vcek'), '/vcek/v1/Genoa/crl');
});

test('HTTP fetcher against a loopback KDS: VCEK, chain and CRL fetched once, then served from the cache', async () => {
  for (const product of ['Milan', 'Turin'] as const) {
    const f = fixture(product);
    const kds = await fakeKds(f.routes);
    const provider = new KdsProvider({ baseUrl: `${kds.base}/` });
    const v = new SnpVerifier();
    const r = await verifyWith(f.evidence, f.pki.trustAnchors, { provider }, v);
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    assert.deepEqual(new Set(kds.hits), new Set(f.routes.keys()));
    const again = await verifyWith(f.evidence, f.pki.trustAnchors, { provider }, v);
    assert.equal(again.verified, true);
    assert.equal(kds.hits.length, 3, 'second verification must not refetch');
  }
});

test('KDS revocation through the fetched CRL, 404 → CERTS_MISSING, HTTP 500 → KDS_FETCH_FAILED', async () => {
  const f = fixture('Genoa');
  f.routes.set(crlPath('Genoa', 'vcek'), f.pki.crl([f.pki.ask.serial]));
  const kds = await fakeKds(f.routes);
  const revoked = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ baseUrl: kds.base }) });
  assert.equal(revoked.errors[0].code, 'CERT_REVOKED');
  const empty = await fakeKds(new Map());
  const missing = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ baseUrl: empty.base }) });
  assert.equal(missing.errors[0].code, 'CERTS_MISSING');
  const broken = await fakeKds(f.routes, 500);
  const failed = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ baseUrl: broken.base }) });
  assert.equal(failed.errors[0].code, 'KDS_FETCH_FAILED');
  const refused = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 2000 }) });
  assert.equal(refused.errors[0].code, 'KDS_FETCH_FAILED');
});

test('directory cache: fetched responses land in a KDS-shaped tree that later verifies offline', async () => {
  const f = fixture('Milan');
  const kds = await fakeKds(f.routes);
  const dir = mkdtempSync(join(tmpdir(), 'coffer-kds-'));
  const online = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ baseUrl: kds.base, cache: new DirKdsCache(dir) }) });
  assert.equal(online.verified, true, JSON.stringify(online.errors));
  assert.deepEqual(readdirSync(join(dir, 'vcek', 'v1', 'Milan')).sort(), ['ab'.repeat(64), 'cert_chain', 'crl']);
  const offline = await verifyWith(f.evidence, f.pki.trustAnchors, { provider: new KdsProvider({ fetch: false, cache: new DirKdsCache(dir) }) });
  assert.equal(offline.verified, true, JSON.stringify(offline.errors));
  // openCollateral recognises the tree as a KDS cache
  const opened = await openSnpCollateral(dir);
  const viaOpen = await verifyWith(f.evidence, f.pki.trustAnchors, opened.snp as Record<string, unknown>);
  assert.equal(viaOpen.verified, true, JSON.stringify(viaOpen.errors));
  assert.equal(kds.hits.length, 3);
  assert.throws(() => new DirKdsCache(dir).fileFor('/vcek/../../etc/passwd'), (e: unknown) => (e as { code?: string }).code === 'KDS_CACHE_INVALID');
});

test('openCollateral: files recognised by content (DER, PEM, CRL, certificate table), unknown files ignored', async () => {
  const f = fixture('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-snpcol-'));
  writeFileSync(join(dir, 'a'), f.routes.get(vcekPath({ product: 'Milan', chipId: f.fields.chipId, tcb: f.fields.reportedTcb }))!);
  writeFileSync(join(dir, 'b'), f.pki.chainPem());
  writeFileSync(join(dir, 'c'), f.pki.crl([f.pki.ask.serial]));
  writeFileSync(join(dir, 'README'), 'notes about this collateral\n');
  mkdirSync(join(dir, 'sub'));
  const opened = await openSnpCollateral(dir);
  assert.equal(opened.snp.certs?.length, 3);
  assert.equal(opened.snp.provider, undefined);
  const r = await verifyWith(f.evidence, f.pki.trustAnchors, opened.snp as Record<string, unknown>);
  assert.equal(r.errors[0]?.code, 'CERT_REVOKED');

  const tdir = mkdtempSync(join(tmpdir(), 'coffer-snptab-'));
  const leaf = f.routes.get(vcekPath({ product: 'Milan', chipId: f.fields.chipId, tcb: f.fields.reportedTcb }))!;
  writeFileSync(join(tdir, 'certs.bin'), serializeCertTable([{ guid: CERT_GUIDS.vcek, data: leaf }, { guid: CERT_GUIDS.ask, data: f.pki.ask.der }]));
  const t = await openSnpCollateral(tdir);
  assert.ok(t.snp.certTable);
  assert.equal((await verifyWith(f.evidence, f.pki.trustAnchors, t.snp as Record<string, unknown>)).verified, true);
  const single = await openSnpCollateral(join(tdir, 'certs.bin'));
  assert.ok(single.snp.certTable);
  await assert.rejects(openSnpCollateral(join(dir, 'README')), (e: unknown) => (e as { code?: string }).code === 'CERTS_MISSING');
});

test('VLEK: the ASVK chain comes from /vlek/v1/{product}/cert_chain; the VLEK itself is never fetched', async () => {
  const pki = new SnpTestPki('Genoa');
  const fields = reportFields({ product: 'Genoa', signingKey: 'vlek' });
  const key = p384();
  const leaf = pki.leaf({ kind: 'vlek', tcb: fields.reportedTcb, key });
  const kds = await fakeKds(new Map([[chainPath('Genoa', 'vlek'), pki.chainPem('vlek')]]));
  const r = await verifyWith(signReport(fields, key.privateKey), pki.trustAnchors, { certs: [leaf.der], provider: new KdsProvider({ baseUrl: kds.base }) });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.deepEqual(kds.hits, ['/vlek/v1/Genoa/cert_chain', '/vlek/v1/Genoa/crl']);
});

test('real Milan report verifies offline from a KDS-shaped directory (pinned ARK)', { skip: vectorsSkip }, async () => {
  const evidence = readVector('snp/virtee_report_milan.bin');
  const rep = parseReport(evidence);
  const dir = mkdtempSync(join(tmpdir(), 'coffer-kds-real-'));
  const cache = new DirKdsCache(dir);
  await cache.put(vcekPath({ product: 'Milan', chipId: rep.chipId, tcb: rep.reportedTcb }), readVector('snp/virtee_vcek_milan.der'));
  await cache.put(chainPath('Milan', 'vcek'), readVector('snp/virtee_cert_chain_milan.pem'));
  const opened = await openSnpCollateral(dir);
  const r = await verifyEvidenceWith(new VerifierRegistry([new SnpVerifier()]), evidence, { at: new Date('2023-05-03T19:23:43Z'), snp: opened.snp });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
});

test('v2 report without productLine: the provider is probed per product line for this chip’s VCEK', async () => {
  const pki = new SnpTestPki('Genoa');
  const fields = reportFields({ product: 'Genoa', version: 2 });
  const key = p384();
  const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const genoaVcek = vcekPath({ product: 'Genoa', chipId: fields.chipId, tcb: fields.reportedTcb });
  const kds = await fakeKds(new Map([[genoaVcek, leaf.der], [chainPath('Genoa', 'vcek'), pki.chainPem()]]));
  const r = await verifyWith(signReport(fields, key.privateKey), pki.trustAnchors, { provider: new KdsProvider({ baseUrl: kds.base }) });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.claims?.platform.productLine, 'Genoa');
  assert.deepEqual(kds.hits.slice(0, 2), [vcekPath({ product: 'Milan', chipId: fields.chipId, tcb: fields.reportedTcb }), genoaVcek]);
});
