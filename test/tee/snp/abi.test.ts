import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReport, serializeReport, REPORT_SIZE, withLayout } from '../../../src/tee/snp/abi/report.js';
import { decodeTcb, encodeTcb } from '../../../src/tee/snp/abi/tcb.js';
import { productFromCpuid, productFromCertName } from '../../../src/tee/snp/abi/product.js';
import { CERT_GUIDS, parseCertTable, serializeCertTable, looksLikeCertTable } from '../../../src/tee/snp/abi/cert-table.js';
import { EvidenceFormatError } from '../../../src/tee/common/errors.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';
import { reportFields, signReport, p384 } from '../../support/snp-pki.js';

const code = (c: string) => (e: unknown) => e instanceof EvidenceFormatError && e.code === c;

test('real Milan v2 report (virtee): every field decodes as the crib sheet says', { skip: vectorsSkip }, () => {
  const b = readVector('snp/virtee_report_milan.bin');
  const r = parseReport(b);
  assert.equal(r.version, 2);
  assert.equal(r.cpuid, undefined);
  assert.equal(r.policy, 0x30000n);
  assert.deepEqual({ smt: r.policyBits.smt, debug: r.policyBits.debug, migrateMa: r.policyBits.migrateMa }, { smt: true, debug: false, migrateMa: false });
  assert.equal(r.vmpl, 0);
  assert.equal(r.signatureAlgo, 1);
  assert.equal(r.signingKey, 'vcek');
  // 03 00 00 00 00 00 08 73 → bl 3, tee 0, snp 8, ucode 0x73 (legacy layout)
  assert.deepEqual(
    { ...r.reportedTcb },
    { bootloader: 3, tee: 0, snp: 8, microcode: 0x73, raw: '7308000000000003' },
  );
  assert.equal(r.platformInfoBits.smtEnabled, true);
  assert.equal(Buffer.from(r.chipId.subarray(0, 4)).toString('hex'), 'd49554ec');
  assert.equal(`${r.currentMajor}.${r.currentMinor}.${r.currentBuild}`, '1.52.4');
  assert.equal(r.launchMitVector, undefined);
  assert.deepEqual(serializeReport(r), b);
});

test('real go-sev-guest report decodes DEBUG and round-trips', { skip: vectorsSkip }, () => {
  const b = readVector('snp/go-sev-guest_attestation.bin');
  const r = parseReport(b);
  assert.equal(r.policyBits.debug, true);
  assert.equal(r.reportedTcb.microcode, 0x44);
  assert.equal(Buffer.from(r.reportData.subarray(0, 5)).toString('hex'), '0102030405');
  assert.deepEqual(serializeReport(r), b);
});

test('Azure HCL-embedded report (v2) parses and round-trips', { skip: vectorsSkip }, () => {
  const b = readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin').subarray(0x20, 0x20 + REPORT_SIZE);
  const r = parseReport(b);
  assert.equal(r.version, 2);
  assert.equal(r.guestSvn, 5);
  assert.deepEqual(serializeReport(r), new Uint8Array(b));
});

test('generated v2, v3, v4, v5 reports on every product round-trip exactly', () => {
  const { privateKey } = p384();
  for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
    for (const version of [2, 3, 4, 5]) {
      const fields = reportFields({ product, version, policy: 0x1f0000n | 0x0a0bn, platformInfo: 0xbfn, authorKeyEn: true });
      const b = signReport(fields, privateKey);
      const r = parseReport(b, { productLine: product });
      assert.deepEqual(serializeReport(r), b, `${product} v${version}`);
      assert.equal(r.product, product);
      assert.equal(r.tcbLayout, product === 'Turin' ? 'turin' : 'legacy');
      assert.equal(r.policyBits.abiMajor, 0x0a);
      assert.equal(r.policyBits.abiMinor, 0x0b);
      assert.equal(r.policyBits.singleSocket, true);
      assert.equal(r.platformInfoBits.tioEnabled, true);
      assert.equal(r.authorKeyEn, true);
      if (version >= 5) assert.equal(r.launchMitVector, 3n);
      if (version >= 3) assert.deepEqual(r.cpuid, fields.cpuid);
    }
  }
});

test('Turin TCB layout: FMC in byte 0, bootloader/tee/snp shifted; v2 uses the caller productLine', () => {
  const raw = 0x7300000008000301n | 0x0000000000000000n;
  assert.deepEqual(decodeTcb(raw, 'turin'), { fmc: 1, bootloader: 3, tee: 0, snp: 8, microcode: 0x73, raw: '7300000008000301' });
  assert.deepEqual(decodeTcb(raw, 'legacy'), { bootloader: 1, tee: 3, snp: 0, microcode: 0x73, raw: '7300000008000301' });
  assert.equal(encodeTcb({ fmc: 1, bootloader: 3, tee: 0, snp: 8, microcode: 0x73 }, 'turin'), raw);
  const b = signReport(reportFields({ product: 'Turin', version: 2 }), p384().privateKey);
  assert.equal(parseReport(b).tcbLayout, 'legacy');
  const turin = parseReport(b, { productLine: 'Turin' });
  assert.equal(turin.reportedTcb.fmc, 1);
  assert.deepEqual(withLayout(parseReport(b), 'Turin').reportedTcb, turin.reportedTcb);
});

test('product detection from CPUID and certificate names', () => {
  assert.equal(productFromCpuid(0x19, 0x01), 'Milan');
  assert.equal(productFromCpuid(0x19, 0x11), 'Genoa');
  assert.equal(productFromCpuid(0x19, 0xa0), 'Genoa');
  assert.equal(productFromCpuid(0x1a, 0x02), 'Turin');
  assert.equal(productFromCpuid(0x1a, 0x50), undefined);
  assert.equal(productFromCpuid(0x17, 0x01), undefined);
  assert.equal(productFromCertName('Milan-B0'), 'Milan');
  assert.equal(productFromCertName('Genoa'), 'Genoa');
  assert.equal(productFromCertName('Venice'), undefined);
});

test('every reserved region must be zero', () => {
  const good = signReport(reportFields({ version: 3 }), p384().privateKey);
  const v2 = signReport(reportFields({ version: 2 }), p384().privateKey);
  for (const [b, off] of [
    [good, 0x04c], [good, 0x18b], [good, 0x19f], [good, 0x1eb], [good, 0x1ef], [good, 0x1f8], [good, 0x207],
    [good, 0x208], [good, 0x29f], [good, 0x330], [good, 0x49f], [v2, 0x188], [v2, 0x18a],
  ] as const) {
    const m = Uint8Array.from(b);
    m[off] = 0x01;
    assert.throws(() => parseReport(m), code('RESERVED_NONZERO'), `offset 0x${off.toString(16)}`);
  }
  // policy bits 63:26, platform info bit 6 / 63:8, signer info 31:5
  for (const [off, v] of [[0x00f, 0x80], [0x00b, 0x04], [0x040, 0x40], [0x041, 0x01], [0x048, 0x20], [0x04b, 0x80]] as const) {
    const m = Uint8Array.from(good);
    m[off] |= v;
    assert.throws(() => parseReport(m), code('RESERVED_NONZERO'), `offset 0x${off.toString(16)}`);
  }
});

test('unknown versions, bad enumerations, truncation and trailing bytes are typed rejections', () => {
  const good = signReport(reportFields({ version: 3 }), p384().privateKey);
  for (const v of [0, 1, 6, 0xffffffff]) {
    const m = Uint8Array.from(good);
    new DataView(m.buffer).setUint32(0, v, true);
    assert.throws(() => parseReport(m), code('UNSUPPORTED_REPORT_VERSION'));
  }
  const noBit17 = Uint8Array.from(good);
  noBit17[0x00a] &= ~0x02;
  assert.throws(() => parseReport(noBit17), code('REPORT_FIELD_INVALID'));
  const badKey = Uint8Array.from(good);
  badKey[0x048] = 2 << 2;
  assert.throws(() => parseReport(badKey), code('REPORT_FIELD_INVALID'));
  const badVmpl = Uint8Array.from(good);
  badVmpl[0x030] = 4;
  assert.throws(() => parseReport(badVmpl), code('REPORT_FIELD_INVALID'));
  assert.throws(() => parseReport(good.subarray(0, 1000)), code('TRUNCATED'));
  assert.throws(() => parseReport(new Uint8Array(0)), code('TRUNCATED'));
  assert.throws(() => parseReport(new Uint8Array([...good, 0])), code('TRAILING_BYTES'));
});

test('certificate table: GUID-indexed entries, zero terminator, bounds', () => {
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  const t = serializeCertTable([{ guid: CERT_GUIDS.vcek, data: a }, { guid: CERT_GUIDS.ark, data: b }]);
  assert.equal(t.length, 3 * 24 + 5);
  // GUID bytes are in RFC 4122 text order
  assert.equal(Buffer.from(t.subarray(0, 4)).toString('hex'), '63da758d');
  assert.ok(looksLikeCertTable(t));
  const e = parseCertTable(t);
  assert.deepEqual(e.map((x) => [x.kind, [...x.data]]), [['vcek', [1, 2, 3]], ['ark', [4, 5]]]);
  const tc = (c: string) => (err: unknown) => err instanceof EvidenceFormatError && err.code === c;
  assert.throws(() => parseCertTable(t.subarray(0, 40)), tc('TRUNCATED'));
  const noTerm = Uint8Array.from(t);
  noTerm.fill(0xaa, 48, 72);
  assert.throws(() => parseCertTable(noTerm), (err: unknown) => err instanceof EvidenceFormatError);
  const intoHeader = Uint8Array.from(t);
  new DataView(intoHeader.buffer).setUint32(16, 8, true);
  assert.throws(() => parseCertTable(intoHeader), tc('CERT_TABLE_INVALID'));
  const past = Uint8Array.from(t);
  new DataView(past.buffer).setUint32(20, 1000, true);
  assert.throws(() => parseCertTable(past), tc('CERT_TABLE_INVALID'));
  const dup = serializeCertTable([{ guid: CERT_GUIDS.vcek, data: a }, { guid: CERT_GUIDS.vcek, data: b }]);
  assert.throws(() => parseCertTable(dup), tc('CERT_TABLE_INVALID'));
  assert.deepEqual(parseCertTable(new Uint8Array(24)), []);
});
