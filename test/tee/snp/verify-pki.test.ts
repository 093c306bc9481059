import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidenceWith } from '../../../src/tee/verify-evidence.js';
import { VerifierRegistry } from '../../../src/tee/registry.js';
import { SnpVerifier } from '../../../src/tee/snp/verifier.js';
import { CERT_GUIDS, serializeCertTable } from '../../../src/tee/snp/abi/cert-table.js';
import type { ProductLine } from '../../../src/tee/snp/abi/product.js';
import type { SnpReport } from '../../../src/tee/snp/abi/report.js';
import { parseCert } from '../../../src/tee/snp/certs/parse.js';
import { ChainCache, verifyChain } from '../../../src/tee/snp/verify/chain.js';
import { SnpTestPki, reportFields, signReport, tcbFor, derInt, p384, CPUID, type LeafSpec, type ReportSpec } from '../../support/snp-pki.js';

const AT = new Date('2025-06-01Z');
const pkis = new Map<string, SnpTestPki>();
const pki = (p: ProductLine, label = 'default') => {
  const k = `${label}:${p}`;
  if (!pkis.has(k)) pkis.set(k, new SnpTestPki(p, label));
  return pkis.get(k)!;
};

interface Case {
  product?: ProductLine;
  report?: ReportSpec;
  leaf?: Partial<LeafSpec>;
  /** Extra options under opts.snp. */
  snp?: Record<string, unknown>;
  certs?: (p: SnpTestPki, leaf: Uint8Array) => Uint8Array[];
  anchors?: (p: SnpTestPki) => Uint8Array[] | undefined;
  at?: Date;
  mutate?: (b: Uint8Array) => void;
  verifier?: SnpVerifier;
}

async function run(c: Case = {}) {
  const product = c.product ?? 'Milan';
  const p = pki(product);
  const fields = reportFields({ product, ...c.report });
  const kind = fields.signingKey === 'vlek' ? 'vlek' : 'vcek';
  const key = p384();
  const leaf = p.leaf({ kind, tcb: fields.reportedTcb, chipId: fields.chipId, key, ...c.leaf });
  const bytes = signReport(fields, key.privateKey);
  c.mutate?.(bytes);
  const certs = c.certs ? c.certs(p, leaf.der) : [leaf.der, p.chainPem(kind)];
  const reg = new VerifierRegistry([c.verifier ?? new SnpVerifier()]);
  const anchors = c.anchors ? c.anchors(p) : p.trustAnchors;
  return verifyEvidenceWith(reg, bytes, { tee: 'snp', at: c.at ?? AT, trustAnchors: anchors, snp: { certs, ...c.snp } });
}

async function rejects(c: Case, code: string) {
  const r = await run(c);
  assert.equal(r.verified, false, `expected ${code}, but it verified`);
  assert.equal(r.errors[0].code, code, r.errors[0].message);
  assert.ok(r.errors[0].message.length > 10);
}

test('every product and report version verifies through the test PKI, claims normalized', async () => {
  for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
    for (const version of [2, 3, 5]) {
      const r = await run({ product, report: { version }, snp: version === 2 && product === 'Turin' ? { productLine: 'Turin' } : {} });
      assert.equal(r.verified, true, `${product} v${version}: ${JSON.stringify(r.errors)}`);
      const cl = r.claims!;
      assert.equal(cl.platform.productLine, product);
      assert.equal(cl.svns.snp, 8);
      assert.equal(cl.svns.microcode, 115);
      assert.equal(cl.svns.fmc, product === 'Turin' ? 1 : undefined);
      assert.equal(cl.platform.chipId.length, product === 'Turin' ? 16 : 128);
      assert.equal(cl.measurements.measurement, '22'.repeat(48));
      assert.equal(cl.reportData, '11'.repeat(64));
      assert.equal(cl.debug, false);
      assert.equal((cl.raw.reportedTcb as { raw: string }).raw.length, 16);
    }
  }
});

test('v2 Turin report without productLine takes its layout from the VCEK productName', async () => {
  const r = await run({ product: 'Turin', report: { version: 2 } });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.claims?.svns.fmc, 1);
});

test('report signature: flipped signed byte, flipped signature byte, non-zero high bytes of R', async () => {
  await rejects({ mutate: (b) => (b[0x50] ^= 1) }, 'REPORT_SIGNATURE_INVALID');
  await rejects({ mutate: (b) => (b[0x2a0] ^= 1) }, 'REPORT_SIGNATURE_INVALID');
  await rejects({ mutate: (b) => (b[0x2a0 + 60] = 1) }, 'REPORT_SIGNATURE_INVALID');
  await rejects({ report: { signatureAlgo: 2 } }, 'UNSUPPORTED_SIGNATURE_ALGO');
  await rejects({ report: { signingKey: 'none' } }, 'REPORT_NOT_SIGNED');
  await rejects({ report: { maskChipKey: true } }, 'REPORT_NOT_SIGNED');
});

test('chain: foreign ASK, foreign ARK, untrusted collateral ARK, PKCS#1 signature, pinned AMD roots', async () => {
  const other = pki('Milan', 'other');
  await rejects({ leaf: { issuerKey: other.ask.key } }, 'VCEK_CHAIN_INVALID');
  await rejects({ certs: (_p, leaf) => [leaf, other.chainPem()] }, 'VCEK_CHAIN_INVALID');
  // An ARK in the collateral is never trusted: only trustAnchors (or the pinned AMD roots) are.
  await rejects({ anchors: () => other.trustAnchors }, 'VCEK_CHAIN_INVALID');
  await rejects({ anchors: () => undefined }, 'VCEK_CHAIN_INVALID');
  await rejects({ leaf: { pss: false } }, 'VCEK_CHAIN_INVALID');
  await rejects({ leaf: { ca: true } }, 'VCEK_CHAIN_INVALID');
  await rejects({ certs: (p) => [p.chainPem()] }, 'CERTS_MISSING');
  await rejects({ leaf: { override: { '4': undefined } } }, 'VCEK_CHAIN_INVALID');
  await rejects({ leaf: { override: { '3.3': undefined } } }, 'VCEK_CHAIN_INVALID');
  await rejects({ leaf: { productName: 'Genoa-B0' } }, 'PRODUCT_MISMATCH');
  await rejects({ report: { cpuid: { family: 0x1a, model: 0x50, stepping: 0 } } }, 'UNKNOWN_PRODUCT');
  await rejects({ snp: { productLine: 'Genoa' } }, 'PRODUCT_MISMATCH');
});

test('validity windows: expired and not-yet-valid VCEK, checked against opts.at', async () => {
  await rejects({ leaf: { notAfter: new Date('2025-01-01Z') } }, 'CERT_EXPIRED');
  await rejects({ leaf: { notBefore: new Date('2026-01-01Z') } }, 'CERT_NOT_YET_VALID');
  await rejects({ at: new Date('2050-01-01Z') }, 'CERT_EXPIRED');
  assert.equal((await run({ at: new Date('2029-12-31Z') })).verified, true);
});

test('TCB binding: every component of the VCEK must equal REPORTED_TCB (FMC on Turin)', async () => {
  for (const arc of ['3.1', '3.2', '3.3', '3.8']) await rejects({ leaf: { override: { [arc]: derInt(200) } } }, 'TCB_MISMATCH');
  await rejects({ product: 'Turin', leaf: { override: { '3.9': derInt(7) } } }, 'TCB_MISMATCH');
  await rejects({ product: 'Turin', leaf: { override: { '3.9': undefined } } }, 'TCB_MISMATCH');
  await rejects({ product: 'Milan', leaf: { override: { '3.9': derInt(1) } } }, 'TCB_MISMATCH');
  // reported TCB raised above what the VCEK certifies
  const p = pki('Milan');
  const fields = reportFields({ product: 'Milan' });
  const key = p384();
  const leaf = p.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const higher: SnpReport = { ...fields, reportedTcb: tcbFor('Milan', { bootloader: 3, tee: 0, snp: 9, microcode: 115 }) };
  const r = await verifyEvidenceWith(new VerifierRegistry([new SnpVerifier()]), signReport(higher, key.privateKey), {
    at: AT,
    trustAnchors: p.trustAnchors,
    snp: { certs: [leaf.der, p.chainPem()] },
  });
  assert.equal(r.errors[0].code, 'TCB_MISMATCH');
});

test('chip binding: hwID vs CHIP_ID (64 bytes; 8 on Turin), masked CHIP_ID only with a VLEK', async () => {
  await rejects({ leaf: { chipId: new Uint8Array(64).fill(0xcd) } }, 'CHIP_ID_MISMATCH');
  await rejects({ product: 'Turin', leaf: { chipId: new Uint8Array(64).fill(0xcd) } }, 'CHIP_ID_MISMATCH');
  // Turin: bytes past the 8-byte id must be zero or they are not what the VCEK certifies
  const tail = new Uint8Array(64).fill(0xab);
  await rejects({ product: 'Turin', report: { chipId: tail }, leaf: { chipId: tail } }, 'CHIP_ID_MISMATCH');
  await rejects({ report: { chipId: new Uint8Array(64) } }, 'CHIP_ID_MISMATCH');
  const vlek = await run({ report: { signingKey: 'vlek', chipId: new Uint8Array(64) } });
  assert.equal(vlek.verified, true, JSON.stringify(vlek.errors));
  assert.equal(vlek.claims?.platform.signingKey, 'vlek');
});

test('VLEK path: ASVK chain, wrong intermediate, VLEK with hwID, VLEK missing', async () => {
  const ok = await run({ product: 'Genoa', report: { signingKey: 'vlek' } });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  await rejects({ report: { signingKey: 'vlek' }, leaf: { issuerKey: pki('Milan').ask.key } }, 'VCEK_CHAIN_INVALID');
  await rejects({ report: { signingKey: 'vlek' }, certs: (p, leaf) => [leaf, p.chainPem('vcek')] }, 'VCEK_CHAIN_INVALID');
  await rejects({ report: { signingKey: 'vlek' }, leaf: { override: { '5': undefined, '4': new Uint8Array(64).fill(0xab) } } }, 'VCEK_CHAIN_INVALID');
  // Report says VLEK, collateral has only a VCEK
  const p = pki('Milan');
  await rejects(
    { report: { signingKey: 'vlek' }, certs: () => [p.leaf({ tcb: reportFields().reportedTcb }).der, p.chainPem('vlek')] },
    'CERTS_MISSING',
  );
});

test('ARK CRL: revoked ASK/ASVK, bad CRL signature, CRL window, requireCrl', async () => {
  const p = pki('Milan');
  await rejects({ snp: { crls: [p.crl([p.ask.serial])] } }, 'CERT_REVOKED');
  await rejects({ report: { signingKey: 'vlek' }, snp: { crls: [p.crl([p.asvk.serial])] } }, 'CERT_REVOKED');
  assert.equal((await run({ snp: { crls: [p.crl(['0999'])] } })).verified, true);
  await rejects({ snp: { crls: [p.crl([], undefined, p.ask.key)] } }, 'CRL_INVALID');
  await rejects({ snp: { crls: [p.crl([], { thisUpdate: new Date('2024-01-01Z'), nextUpdate: new Date('2025-01-01Z') })] } }, 'CRL_EXPIRED');
  await rejects({ snp: { requireCrl: true } }, 'CRL_MISSING');
  assert.equal((await run({ snp: { requireCrl: true, crls: [p.crl()] } })).verified, true);
  // A CRL inside the certs bundle is recognised by content too.
  await rejects({ certs: (q, leaf) => [leaf, q.chainPem(), q.crl([q.ask.serial])] }, 'CERT_REVOKED');
  await rejects({ snp: { crls: [new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])] } }, 'CERT_INVALID');
});

test('extended-report certificate table as attachment, with CRL entry', async () => {
  const p = pki('Milan');
  const fields = reportFields();
  const key = p384();
  const leaf = p.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const evidence = signReport(fields, key.privateKey);
  const reg = new VerifierRegistry([new SnpVerifier()]);
  const table = (crl?: Uint8Array) =>
    serializeCertTable([
      { guid: CERT_GUIDS.vcek, data: leaf.der },
      { guid: CERT_GUIDS.ask, data: p.ask.der },
      { guid: CERT_GUIDS.ark, data: p.ark.der },
      ...(crl ? [{ guid: CERT_GUIDS.crl, data: crl }] : []),
    ]);
  const ok = await verifyEvidenceWith(reg, { evidence, attachments: { certs: table() } }, { at: AT, trustAnchors: p.trustAnchors });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  const rev = await verifyEvidenceWith(reg, { evidence, attachments: { certs: table(p.crl([p.ask.serial])) } }, { at: AT, trustAnchors: p.trustAnchors });
  assert.equal(rev.errors[0].code, 'CERT_REVOKED');
  const bad = await verifyEvidenceWith(reg, { evidence, attachments: { certs: new Uint8Array(30).fill(0x11) } }, { at: AT, trustAnchors: p.trustAnchors });
  assert.equal(bad.errors[0].code, 'TRUNCATED');
});

test('chain cache: warm path still re-checks windows, CRL window and per-report bindings', async () => {
  const p = pki('Milan');
  const fields = reportFields();
  const leaf = parseCert(p.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId }).der, 'leaf');
  const inter = parseCert(p.ask.der, 'ask');
  const ark = parseCert(p.ark.der, 'ark');
  const cache = new ChainCache(2);
  const input = { product: 'Milan' as const, signingKey: 'vcek' as const, leaves: [leaf], intermediates: [inter], arks: [ark], crls: [], at: AT };
  verifyChain(input, cache);
  assert.equal(cache.size, 1);
  verifyChain(input, cache);
  assert.equal(cache.size, 1);
  assert.throws(() => verifyChain({ ...input, at: new Date('2031-01-01Z') }, cache), (e: unknown) => (e as { code?: string }).code === 'CERT_EXPIRED');
  // A shared verifier (warm cache) still rejects a report whose TCB the cached VCEK does not certify.
  const v = new SnpVerifier();
  assert.equal((await run({ verifier: v })).verified, true);
  const key = p384();
  const leaf2 = p.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const reg = new VerifierRegistry([v]);
  const bumped = signReport({ ...fields, reportedTcb: tcbFor('Milan', { bootloader: 4, tee: 0, snp: 8, microcode: 115 }) }, key.privateKey);
  for (let i = 0; i < 2; i++) {
    const r = await verifyEvidenceWith(reg, bumped, { at: AT, trustAnchors: p.trustAnchors, snp: { certs: [leaf2.der, p.chainPem()] } });
    assert.equal(r.errors[0].code, 'TCB_MISMATCH');
  }
});

test('detect() recognises SNP reports only', () => {
  const v = new SnpVerifier();
  const good = signReport(reportFields(), p384().privateKey);
  assert.equal(v.detect({ evidence: good }), true);
  assert.equal(v.detect({ evidence: good.subarray(1) }), false);
  const v9 = Uint8Array.from(good);
  v9[0] = 9;
  assert.equal(v.detect({ evidence: v9 }), false);
  assert.equal(CPUID.Turin.family, 0x1a);
});

test('malformed opts.snp and trustAnchors are typed usage errors, not crashes', async () => {
  const ev = signReport(reportFields(), p384().privateKey);
  const reg = new VerifierRegistry([new SnpVerifier()]);
  for (const snp of [5, { certs: 'x' }, { crls: [1] }, { certTable: [] }, { productLine: 'Venice' }, { provider: {} }, { requireCrl: 'yes' }]) {
    const r = await verifyEvidenceWith(reg, ev, { at: AT, snp });
    assert.equal(r.errors[0].code, 'SNP_OPTIONS_INVALID', JSON.stringify(snp));
  }
  const r = await verifyEvidenceWith(reg, ev, { at: AT, trustAnchors: ['pem'], snp: { certs: [] } });
  assert.equal(r.errors[0].code, 'TRUST_ANCHORS_INVALID');
  await assert.rejects(new SnpVerifier().verify({ evidence: ev }, {}), (e: unknown) => (e as { code?: string }).code === 'AT_REQUIRED');
});

test('a collateral set with several VCEKs: the one for this chip and TCB is used', async () => {
  const p = pki('Milan');
  const fields = reportFields();
  const key = p384();
  const right = p.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  const otherChip = p.leaf({ tcb: fields.reportedTcb, chipId: new Uint8Array(64).fill(1) });
  const otherTcb = p.leaf({ tcb: tcbFor('Milan', { bootloader: 2, tee: 0, snp: 7, microcode: 100 }), chipId: fields.chipId });
  const r = await verifyEvidenceWith(new VerifierRegistry([new SnpVerifier()]), signReport(fields, key.privateKey), {
    at: AT,
    trustAnchors: p.trustAnchors,
    snp: { certs: [otherChip.der, otherTcb.der, right.der, p.chainPem()] },
  });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
});
