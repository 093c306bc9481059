import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { makeSampleEvidence, SampleVerifier } from '../../src/tee/sample/index.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { createHash } from 'node:crypto';
import { verifyEvidence } from '../../src/index.js';

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const v = new SampleVerifier();
const at = new Date();

test("Trustee's sample evidence verifies: svn, report_data, fixed launch digest", async () => {
  const ev = enc({ svn: '1', report_data: Buffer.from([1, 2, 3]).toString('base64') });
  assert.equal(v.detect({ evidence: ev }), true);
  const c = await v.verify({ evidence: ev }, { at });
  assert.equal(c.tee, 'sample');
  assert.equal(c.reportData, '010203');
  assert.equal(c.svns.svn, 1);
  assert.equal(c.measurements.launch_digest, 'abcde');
  assert.deepEqual(c.raw.platform_version, { major: 1, minor: 4 });
});

test('malformed sample evidence is a typed format error', async () => {
  for (const [bytes, code] of [
    [new TextEncoder().encode('{nope'), 'SAMPLE_NOT_JSON'],
    [enc([1]), 'SAMPLE_NOT_OBJECT'],
    [enc({ svn: 1 }), 'SAMPLE_BAD_SVN'],
    [enc({ svn: '1', report_data: '!!' }), 'SAMPLE_BAD_REPORT_DATA'],
    [enc({ svn: '1', extra: 1 }), 'SAMPLE_UNKNOWN_FIELD'],
  ] as const) {
    await assert.rejects(v.verify({ evidence: bytes }, { at }), { code }, code);
  }
  assert.equal(v.detect({ evidence: new Uint8Array([0x04, 0x00]) }), false);
});

test('dev-key signed evidence: verified against trusted dev keys; tampering, unknown keys and unsigned (when required) fail', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const devKey = { ...privateKey.export({ format: 'jwk' }), kid: 'dev1' };
  const pub = { ...publicKey.export({ format: 'jwk' }), kid: 'dev1' };
  const ev = makeSampleEvidence(new Uint8Array([7]), { devKey, launchDigest: 'ff00', debug: true, svn: '3' });
  const opts = { at, sample: { devKeys: [pub], requireSignature: true } };
  const c = await v.verify({ evidence: enc(ev) }, opts);
  assert.equal(c.measurements.launch_digest, 'ff00');
  assert.equal(c.debug, true);
  assert.equal(c.raw.kid, 'dev1');
  await assert.rejects(v.verify({ evidence: enc({ ...ev, svn: '4' }) }, opts), { code: 'SAMPLE_SIGNATURE_INVALID' });
  await assert.rejects(v.verify({ evidence: enc(ev) }, { at, sample: { devKeys: [] } }), { code: 'SAMPLE_KEY_UNKNOWN' });
  await assert.rejects(v.verify({ evidence: enc({ svn: '1', report_data: '' }) }, opts), { code: 'SAMPLE_UNSIGNED' });
});

test('verifyEvidence detects sample evidence and binds the nonce; empty policy never trusts it (appraise)', async () => {
  const nonce = new Uint8Array([5, 5, 5]);
  const ev = enc({ svn: '1', report_data: createHash('sha384').update(nonce).digest('base64') });
  const r = await verifyEvidence(ev, { nonce });
  assert.equal(r.verified, true);
  assert.equal(r.tee, 'sample');
  const bad = await verifyEvidence(ev, { nonce: new Uint8Array([6]) });
  assert.equal(bad.errors[0].code, 'NONCE_MISMATCH');
  const { appraise } = await import('../../src/policy/appraise.js');
  assert.equal(appraise(r.claims!, {}).failures[0].code, 'SAMPLE_NOT_ALLOWED');
  assert.equal(appraise(r.claims!, { tees: ['sample'] }).status, 'affirming');
});

test('JCS matches the RFC 8785 / Trustee test vector', () => {
  const s = canonicalJson({ b: 1, a: 'test', c: { d: 'e' } });
  assert.equal(s, '{"a":"test","b":1,"c":{"d":"e"}}');
  assert.equal(createHash('sha384').update(s).digest('hex'), 'e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3');
});
