// The strict DER reader behind certificate extensions and CRLs: agrees with @peculiar/asn1-x509 on real and
// generated certificates and CRLs, and refuses malformed input (truncation, overruns, indefinite lengths, bad times).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, CertificateList, KeyUsage, BasicConstraints } from '@peculiar/asn1-x509';
import { certificateParts, crlParts, DerError, keyUsage, basicConstraints, readTlv, time } from '../../src/tee/common/der.js';
import { parseCrlDer, pemBlocks } from '../../src/tee/dcap/pki.js';
import { INTEL_SGX_ROOT_CA_PEM } from '../../src/tee/dcap/constants.js';
import { createDcapWorld } from '../support/dcap-world.js';

test('certificate parts and CRL parts match the schema decoder', async () => {
  const w = await createDcapWorld();
  const coll = await w.collateral('sgx');
  const certs = [...coll.certs, w.sgxPck.der, pemBlocks(INTEL_SGX_ROOT_CA_PEM)[0]!.der];
  for (const der of certs) {
    const mine = certificateParts(der);
    const ref = AsnConvert.parse(der, Certificate);
    assert.equal(mine.sigAlg, ref.signatureAlgorithm.algorithm);
    assert.equal(mine.tbsSigAlg, ref.tbsCertificate.signature.algorithm);
    const refExts = ref.tbsCertificate.extensions ?? [];
    assert.deepEqual(mine.extensions.map((e) => [e.id, e.critical, Buffer.from(e.value).toString('hex')]), [...refExts].map((e) => [e.extnID, e.critical, Buffer.from(e.extnValue.buffer).toString('hex')]));
    for (const e of mine.extensions) {
      if (e.id === '2.5.29.15') assert.equal(keyUsage(e.value), AsnConvert.parse(e.value, KeyUsage).toNumber());
      if (e.id === '2.5.29.19') {
        const bc = AsnConvert.parse(e.value, BasicConstraints);
        assert.deepEqual(basicConstraints(e.value), { ca: bc.cA, pathLen: bc.pathLenConstraint });
      }
    }
  }
  for (const der of coll.crls) {
    const mine = crlParts(der);
    const ref = AsnConvert.parse(der, CertificateList);
    assert.equal(mine.thisUpdate.getTime(), ref.tbsCertList.thisUpdate.getTime().getTime());
    assert.equal(mine.nextUpdate?.getTime(), ref.tbsCertList.nextUpdate?.getTime().getTime());
    assert.deepEqual(mine.revoked.map((r) => Buffer.from(r.serial).toString('hex')), [...(ref.tbsCertList.revokedCertificates ?? [])].map((r) => Buffer.from(r.userCertificate).toString('hex')));
    assert.equal(Buffer.from(mine.signature).toString('hex'), Buffer.from(ref.signature).toString('hex'));
    const p = parseCrlDer(der);
    assert.match(p.issuer, /CN=Intel SGX/);
  }
});

test('malformed DER is refused, never read past its parent', async () => {
  const w = await createDcapWorld();
  const der = w.sgxPck.der;
  assert.throws(() => readTlv(new Uint8Array([0x30]), 0), DerError);
  assert.throws(() => readTlv(new Uint8Array([0x30, 0x80, 0, 0]), 0), /indefinite/);
  assert.throws(() => readTlv(new Uint8Array([0x30, 0x85, 1, 1, 1, 1, 1]), 0), DerError);
  assert.throws(() => readTlv(new Uint8Array([0x30, 0x05, 0, 0]), 0), /overruns/);
  assert.throws(() => readTlv(new Uint8Array([0x1f, 0x01, 0]), 0), DerError);
  // Every truncation of a certificate and of a CRL fails with a DerError (no RangeError, no partial result).
  const crl = (await w.collateral('sgx')).crls[1]!;
  for (const [what, bytes, parse] of [['cert', der, certificateParts], ['crl', crl, crlParts]] as const) {
    for (let n = 0; n < bytes.length; n += 7) assert.throws(() => parse(bytes.subarray(0, n)), DerError, `${what} cut at ${n}`);
    const trailing = new Uint8Array(bytes.length + 1);
    trailing.set(bytes);
    assert.throws(() => parse(trailing), /trailing/);
  }
  const t = (tag: number, s: string) => ({ tag, raw: new Uint8Array(), value: new Uint8Array(Buffer.from(s)) });
  assert.equal(time(t(0x17, '491231235959Z'), 't').toISOString(), '2049-12-31T23:59:59.000Z');
  assert.equal(time(t(0x17, '500101000000Z'), 't').toISOString(), '1950-01-01T00:00:00.000Z');
  assert.equal(time(t(0x18, '20260131120000Z'), 't').toISOString(), '2026-01-31T12:00:00.000Z');
  for (const bad of ['260231000000Z', '2601010000Z', '260101000000+0100', '260101000000.5Z']) assert.throws(() => time(t(0x17, bad), 't'), DerError, bad);
  assert.throws(() => time(t(0x04, '260101000000Z'), 't'), DerError);
});
