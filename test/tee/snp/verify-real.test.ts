import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { REPORT_SIZE } from '../../../src/tee/snp/abi/report.js';
import { CERT_GUIDS, serializeCertTable } from '../../../src/tee/snp/abi/cert-table.js';
import { parseCert, parseCollateralBlob, parseVcekExtensions, type CollateralItems } from '../../../src/tee/snp/certs/parse.js';
import { PINNED_ARKS, BUILTIN_INTERMEDIATES } from '../../../src/tee/snp/certs/roots.js';
import { ChainCache, verifyChain } from '../../../src/tee/snp/verify/chain.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';

const GO = { rep: 'snp/go-sev-guest_attestation.bin', vcek: 'snp/go-sev-guest_vcek.der', chain: 'snp/go-sev-guest_milan_cert_chain.pem', at: new Date('2022-10-24T00:55:28Z') };
const VT = { rep: 'snp/virtee_report_milan.bin', vcek: 'snp/virtee_vcek_milan.der', chain: 'snp/virtee_cert_chain_milan.pem', at: new Date('2023-05-03T19:23:43Z') };

for (const v of [GO, VT]) {
  test(`${v.rep} verifies with its VCEK and chain at ${v.at.toISOString()}`, { skip: vectorsSkip }, async () => {
    const r = await verifyEvidence(readVector(v.rep), { at: v.at, snp: { certs: [readVector(v.vcek), readVector(v.chain)] } });
    assert.deepEqual(r.errors, []);
    assert.equal(r.verified, true);
    assert.equal(r.tee, 'snp');
    assert.equal(r.claims?.platform.productLine, 'Milan');
    assert.equal(r.claims?.platform.signingKey, 'vcek');
    assert.equal(r.claims?.measurements.measurement.length, 96);
  });

  test(`${v.rep} verifies with only the VCEK (pinned ARK, built-in ASK) and from a certificate table`, { skip: vectorsSkip }, async () => {
    const only = await verifyEvidence(readVector(v.rep), { at: v.at, tee: 'snp', snp: { certs: [readVector(v.vcek)] } });
    assert.equal(only.verified, true, JSON.stringify(only.errors));
    const chain: CollateralItems = { certs: [], crls: [] };
    parseCollateralBlob(readVector(v.chain), 'chain', chain);
    const table = serializeCertTable([
      { guid: CERT_GUIDS.vcek, data: readVector(v.vcek) },
      { guid: CERT_GUIDS.ask, data: chain.certs[0].der },
      { guid: CERT_GUIDS.ark, data: chain.certs[1].der },
    ]);
    const viaTable = await verifyEvidence({ evidence: readVector(v.rep), attachments: { certs: table } }, { at: v.at });
    assert.equal(viaTable.verified, true, JSON.stringify(viaTable.errors));
  });
}

test('real report: wrong VCEK, flipped bits, later/earlier time, missing certs are rejected with the right code', { skip: vectorsSkip }, async () => {
  const rep = readVector(GO.rep);
  const wrongVcek = await verifyEvidence(rep, { at: new Date('2024-01-01Z'), snp: { certs: [readVector(VT.vcek)] } });
  assert.equal(wrongVcek.verified, false);
  assert.equal(wrongVcek.errors[0].code, 'REPORT_SIGNATURE_INVALID');
  const flipped = Uint8Array.from(rep);
  flipped[0x90] ^= 1; // measurement
  const f = await verifyEvidence(flipped, { at: GO.at, snp: { certs: [readVector(GO.vcek)] } });
  assert.equal(f.errors[0].code, 'REPORT_SIGNATURE_INVALID');
  const early = await verifyEvidence(rep, { at: new Date('2022-01-01Z'), snp: { certs: [readVector(GO.vcek)] } });
  assert.equal(early.errors[0].code, 'CERT_NOT_YET_VALID');
  const late = await verifyEvidence(rep, { at: new Date('2030-01-01Z'), snp: { certs: [readVector(GO.vcek)] } });
  assert.equal(late.errors[0].code, 'CERT_EXPIRED');
  const none = await verifyEvidence(rep, { at: GO.at, tee: 'snp' });
  assert.equal(none.errors[0].code, 'CERTS_MISSING');
  const none2 = await verifyEvidence(rep, { at: GO.at, tee: 'snp', snp: { productLine: 'Milan' } });
  assert.equal(none2.errors[0].code, 'CERTS_MISSING');
  // Another product's roots as trust anchors: the Milan ASK does not chain.
  const genoa = await verifyEvidence(rep, { at: GO.at, trustAnchors: [Buffer.from(PINNED_ARKS.Genoa)], snp: { certs: [readVector(GO.vcek), readVector(GO.chain)] } });
  assert.equal(genoa.errors[0].code, 'VCEK_CHAIN_INVALID');
  // v2 report told it is Genoa: the Milan VCEK's product conflicts.
  const prod = await verifyEvidence(rep, { at: GO.at, snp: { productLine: 'Genoa', certs: [readVector(GO.vcek)] } });
  assert.equal(prod.errors[0].code, 'PRODUCT_MISMATCH');
});

test('Azure CVM HCL report: SNP report signature verifies against its VCEK', { skip: vectorsSkip }, async () => {
  const hcl = readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin');
  const rep = hcl.subarray(0x20, 0x20 + REPORT_SIZE);
  const pem = readVector('tpm/azure/trustee_az-snp-vtpm_vcek.pem');
  const items: CollateralItems = { certs: [], crls: [] };
  parseCollateralBlob(pem, 'azure', items);
  const vcek = items.certs.find((c) => c.role === 'vcek')!;
  const at = new Date(vcek.notBefore.getTime() + 86400_000);
  const r = await verifyEvidence(rep, { at, snp: { certs: [pem] } });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  assert.equal(r.claims?.svns.guestSvn, 5);
});

test('Turin VCEK chain-verifies against the pinned Turin ARK; its extensions carry fmcSPL and an 8-byte hwID', { skip: vectorsSkip }, () => {
  const leaf = parseCert(readVector('snp/virtee_vcek_turin.der'), 'turin vcek');
  const ext = parseVcekExtensions(leaf);
  assert.equal(ext.product, 'Turin');
  assert.equal(ext.structVersion, 1);
  assert.equal(ext.fmcSPL, 0);
  assert.equal(ext.ucodeSPL, 9);
  assert.equal(ext.hwId?.length, 8);
  const chain: CollateralItems = { certs: [], crls: [] };
  parseCollateralBlob(readVector('snp/virtee_cert_chain_turin.pem'), 'turin chain', chain);
  const ark: CollateralItems = { certs: [], crls: [] };
  parseCollateralBlob(Buffer.from(PINNED_ARKS.Turin), 'pinned', ark);
  const at = new Date('2025-01-01Z');
  const cache = new ChainCache();
  const ek = verifyChain({ product: 'Turin', signingKey: 'vcek', leaves: [leaf], intermediates: chain.certs, arks: ark.certs, crls: [], at }, cache);
  assert.equal(ek.intermediate.cn, 'SEV-Turin');
  assert.equal(cache.size, 1);
  // The same leaf must not chain to Milan's root.
  const milan: CollateralItems = { certs: [], crls: [] };
  parseCollateralBlob(Buffer.from(PINNED_ARKS.Milan), 'pinned', milan);
  assert.throws(
    () => verifyChain({ product: 'Turin', signingKey: 'vcek', leaves: [leaf], intermediates: chain.certs, arks: milan.certs, crls: [], at }, new ChainCache()),
    (e: unknown) => (e as { code?: string }).code === 'VCEK_CHAIN_INVALID',
  );
});

test('built-in ASK/ASVK for every product chain to the pinned ARKs', () => {
  for (const p of ['Milan', 'Genoa', 'Turin'] as const) {
    const ark: CollateralItems = { certs: [], crls: [] };
    parseCollateralBlob(Buffer.from(PINNED_ARKS[p]), 'ark', ark);
    for (const k of ['ask', 'asvk'] as const) {
      const c = parseCert(new Uint8Array(Buffer.from(BUILTIN_INTERMEDIATES[p][k].replace(/-----[^-]+-----|\s/g, ''), 'base64')), k);
      assert.equal(c.role, k);
      assert.equal(c.product, p);
      assert.ok(c.x509.verify(ark.certs[0].publicKey), `${p} ${k}`);
    }
  }
  assert.ok(createVerifierRegistry().list().includes('snp'));
});
