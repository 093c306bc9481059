import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHash } from 'node:crypto';
import { EvidenceFormatError } from '../../../src/tee/common/errors.js';
import { parseAttest, serializeAttest, unwrapAttest, type TpmsAttest } from '../../../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_ST, TPM_GENERATED_VALUE } from '../../../src/tee/tpm/abi/constants.js';
import { parseSignature, serializeSignature, parseSignatureFile, parseDerEcdsa, type TpmtSignature } from '../../../src/tee/tpm/abi/signature.js';
import { parsePublic, parsePublic2b, serializePublic, serializePublic2b, parseAkPublic, publicToKeyObject, objectName, type TpmtPublic } from '../../../src/tee/tpm/abi/public.js';
import { parsePcrsFile, serializePcrsSerialized, serializePcrsMarshaled, selection, flatten, type PcrValues } from '../../../src/tee/tpm/abi/pcrs.js';
import { ByteWriter } from '../../../src/tee/tpm/abi/writer.js';

const sel = selection([[TPM_ALG.SHA256, [0, 1, 16]], [TPM_ALG.SHA1, [3]]]);
const values: PcrValues = new Map([
  [TPM_ALG.SHA256, new Map([[0, new Uint8Array(32)], [1, new Uint8Array(32).fill(1)], [16, new Uint8Array(32).fill(0x16)]])],
  [TPM_ALG.SHA1, new Map([[3, new Uint8Array(20).fill(3)]])],
]);

const attest: TpmsAttest = {
  magic: TPM_GENERATED_VALUE,
  type: TPM_ST.ATTEST_QUOTE,
  qualifiedSigner: Uint8Array.from([0, 0x0b, ...new Uint8Array(32).fill(0xaa)]),
  extraData: Uint8Array.from([1, 2, 3]),
  clockInfo: { clock: 123456789n, resetCount: 1, restartCount: 2, safe: true },
  firmwareVersion: 0x2019102300163636n,
  attested: { kind: 'quote', pcrSelect: sel, pcrDigest: new Uint8Array(32).fill(7) },
};

test('TPMS_ATTEST: round trip, TPM2B unwrap, bad magic, every truncation is a typed error', () => {
  const b = serializeAttest(attest);
  assert.deepEqual(parseAttest(b), attest);
  const wrapped = new ByteWriter().tpm2b(b).finish();
  assert.deepEqual(unwrapAttest(wrapped), b);
  const certify: TpmsAttest = { ...attest, type: TPM_ST.ATTEST_CERTIFY, attested: { kind: 'certify', name: Uint8Array.of(0, 0xb, 1), qualifiedName: Uint8Array.of(0, 0xb, 2) } };
  assert.deepEqual(parseAttest(serializeAttest(certify)), certify);
  const bad = Uint8Array.from(b);
  bad[0] = 0;
  assert.throws(() => parseAttest(bad), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_BAD_MAGIC');
  for (let n = 0; n < b.length; n++) assert.throws(() => parseAttest(b.subarray(0, n)), EvidenceFormatError);
  assert.throws(() => parseAttest(Uint8Array.from([...b, 0])), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TRAILING_BYTES');
  const safe = Uint8Array.from(b);
  safe[2 + 4 + 34 + 2 + 3 + 16 + 2] = 2; // clockInfo.safe is a TPMI_YES_NO
  assert.throws(() => parseAttest(safe), (e: unknown) => e instanceof EvidenceFormatError && /safe/.test(e.message));
});

test('TPMT_SIGNATURE: RSASSA/RSAPSS/ECDSA round trip; unknown schemes rejected; plain and DER forms', () => {
  const sigs: TpmtSignature[] = [
    { sigAlg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256, sig: new Uint8Array(256).fill(5) },
    { sigAlg: TPM_ALG.RSAPSS, hash: TPM_ALG.SHA384, sig: new Uint8Array(384).fill(6) },
    { sigAlg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: new Uint8Array(32).fill(1), s: new Uint8Array(31).fill(2) },
  ];
  for (const s of sigs) {
    const b = serializeSignature(s);
    assert.deepEqual(parseSignature(b), s);
    assert.deepEqual(parseSignatureFile(b), { kind: 'tpmt', sig: s });
    for (let n = 0; n < b.length; n++) assert.throws(() => parseSignature(b.subarray(0, n)), EvidenceFormatError);
  }
  assert.throws(() => parseSignature(Uint8Array.of(0, 0x15, 0, 0xb, 0, 0)), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_UNSUPPORTED_ALG');
  assert.throws(() => parseSignature(Uint8Array.of(0, 0x14, 0, 0x99, 0, 0)), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_UNSUPPORTED_ALG');
  assert.equal(parseSignatureFile(new Uint8Array(256).fill(9)).kind, 'plain');
  const der = Uint8Array.from([0x30, 0x08, 0x02, 0x02, 0x00, 0x81, 0x02, 0x02, 0x01, 0x02]);
  assert.deepEqual(parseDerEcdsa(der), { r: Uint8Array.of(0x81), s: Uint8Array.of(1, 2) });
  assert.throws(() => parseDerEcdsa(der.subarray(0, 7)), EvidenceFormatError);
});

function tpmPublicOf(kind: 'rsa' | 'ec'): TpmtPublic {
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00050072, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL } };
  if (kind === 'rsa') {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    return { ...base, type: TPM_ALG.RSA, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: new Uint8Array(Buffer.from(jwk.n!, 'base64url')) };
  }
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return { ...base, type: TPM_ALG.ECC, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curveId: 3, kdf: { alg: TPM_ALG.NULL }, x: new Uint8Array(Buffer.from(jwk.x!, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y!, 'base64url')) };
}

test('TPMT_PUBLIC / TPM2B_PUBLIC: round trip, Name, KeyObject; the AK file in every format gives one key', () => {
  for (const kind of ['rsa', 'ec'] as const) {
    const p = tpmPublicOf(kind);
    const b = serializePublic(p);
    assert.deepEqual(parsePublic(b), p);
    const b2 = serializePublic2b(p);
    assert.deepEqual(parsePublic2b(b2), p);
    assert.deepEqual(objectName(p), Uint8Array.from([0, 0x0b, ...createHash('sha256').update(b).digest()]));
    const key = publicToKeyObject(p);
    const spki = key.export({ format: 'der', type: 'spki' });
    const forms = [b, b2, new Uint8Array(spki), new Uint8Array(Buffer.from(key.export({ format: 'pem', type: 'spki' }) as string)), new Uint8Array(Buffer.from(JSON.stringify(key.export({ format: 'jwk' }))))];
    for (const f of forms) assert.deepEqual(parseAkPublic(f).key.export({ format: 'der', type: 'spki' }), spki);
    assert.deepEqual(parseAkPublic(b2).name, objectName(p));
    for (let n = 0; n < b.length; n++) assert.throws(() => parsePublic(b.subarray(0, n)), EvidenceFormatError);
  }
  // An RSA modulus that contradicts keyBits, an unsupported type, a size prefix that lies.
  const rsa = tpmPublicOf('rsa');
  assert.throws(() => publicToKeyObject({ ...(rsa as Extract<TpmtPublic, { keyBits: number }>), keyBits: 1024 }), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_PUBLIC_MALFORMED');
  assert.throws(() => parsePublic(Uint8Array.of(0, 0x08, 0, 0xb, 0, 0, 0, 0, 0, 0)), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_UNSUPPORTED_ALG');
  const b2 = serializePublic2b(rsa);
  b2[1] ^= 1;
  assert.throws(() => parsePublic2b(b2), EvidenceFormatError);
  assert.throws(() => parseAkPublic(new TextEncoder().encode('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n')), EvidenceFormatError);
});

test('PCR files: tpm2-tools serialized (exact 5.x layout), marshaled, values, YAML and JSON maps', () => {
  const ser = serializePcrsSerialized(sel, values);
  assert.equal(ser.length, 4 + 16 * 8 + 4 + 532); // 4 PCRs fit one TPML_DIGEST
  assert.deepEqual(Buffer.from(ser.subarray(0, 12)).toString('hex'), '020000000b00030300010000');
  assert.deepEqual(parsePcrsFile(ser), values);
  assert.deepEqual(parsePcrsFile(serializePcrsMarshaled(sel, values)), values);
  const flat = Buffer.concat(flatten(sel, values));
  assert.deepEqual(parsePcrsFile(new Uint8Array(flat), sel), values);
  assert.throws(() => parsePcrsFile(new Uint8Array(flat)), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_PCRS_MALFORMED');
  const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex').toUpperCase()}`;
  const yaml = `pcrs:\n  sha256:\n    0 : ${hex(values.get(TPM_ALG.SHA256)!.get(0)!)}\n    1 : ${hex(values.get(TPM_ALG.SHA256)!.get(1)!)}\n    16: ${hex(values.get(TPM_ALG.SHA256)!.get(16)!)}\n  sha1:\n    3 : ${hex(values.get(TPM_ALG.SHA1)!.get(3)!)}\n`;
  assert.deepEqual(parsePcrsFile(new TextEncoder().encode(yaml)), values);
  const json = JSON.stringify({ sha1: { 3: '03'.repeat(20) }, sha256: { 0: '00'.repeat(32), 1: '01'.repeat(32), 16: '16'.repeat(32) } });
  assert.deepEqual(flatten(sel, parsePcrsFile(new TextEncoder().encode(json))), flatten(sel, values));
  const bad = (s: string, re: RegExp) => assert.throws(() => parsePcrsFile(new TextEncoder().encode(s)), (e: unknown) => e instanceof EvidenceFormatError && re.test(e.message));
  bad('{"sha256": {"0": "00"}}', /1 bytes, expected 32/);
  bad('{"md5": {"0": "00"}}', /unknown PCR bank/);
  bad('{"sha256": {"x": "00"}}', /bad PCR index/);
  bad('sha256: [1, 2', /not valid YAML/);
  assert.throws(() => flatten(sel, new Map()), (e: unknown) => e instanceof EvidenceFormatError && e.code === 'TPM_PCR_MISSING' && /sha256:0/.test(e.message));
  // -F values whose bytes happen to look like text or like a marshaled header still split by the selection.
  const textLike = new Map([[TPM_ALG.SHA256, new Map([[0, new Uint8Array(32).fill(0x61)], [1, new Uint8Array(32).fill(0x62)], [16, new Uint8Array(32).fill(0x63)]])], [TPM_ALG.SHA1, new Map([[3, new Uint8Array(20).fill(0x7b)]])]]);
  assert.deepEqual(parsePcrsFile(new Uint8Array(Buffer.concat(flatten(sel, textLike))), sel), textLike);
  const marshaledLike = new Map([[TPM_ALG.SHA256, new Map([[0, Uint8Array.from([0, 0, 0, 2, ...new Uint8Array(28).fill(0xee)])], [1, new Uint8Array(32)], [16, new Uint8Array(32)]])], [TPM_ALG.SHA1, new Map([[3, new Uint8Array(20)]])]]);
  assert.deepEqual(parsePcrsFile(new Uint8Array(Buffer.concat(flatten(sel, marshaledLike))), sel), marshaledLike);
  // Serialized with a digest list count that lies.
  const lie = Uint8Array.from(ser);
  lie[4 + 128] = 5;
  assert.throws(() => parsePcrsFile(lie), EvidenceFormatError);
  for (let n = 1; n < ser.length; n += 37) assert.throws(() => parsePcrsFile(ser.subarray(0, n)), EvidenceFormatError);
});
