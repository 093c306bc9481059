import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, createHash, type KeyObject } from 'node:crypto';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { serializeAttest } from '../../../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../../src/tee/tpm/abi/constants.js';
import { serializeSignature } from '../../../src/tee/tpm/abi/signature.js';
import { serializePublic2b, type TpmtPublic } from '../../../src/tee/tpm/abi/public.js';
import { selection, serializePcrsMarshaled, serializePcrsSerialized, type PcrValues } from '../../../src/tee/tpm/abi/pcrs.js';

/** The verifier's memo caches (parsed AKs, PCR checks) must never turn different input into a cached answer. */
const registry = createVerifierRegistry();
const keys = [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('rsa', { modulusLength: 2048 })];
const SEL = selection([[TPM_ALG.SHA256, [0, 1, 7]]]);
const vals = (fill: number): PcrValues => new Map([[TPM_ALG.SHA256, new Map(SEL[0].pcrs.map((p) => [p, new Uint8Array(32).fill(fill + p)]))]]);

function akFile(k: KeyObject): Uint8Array {
  const n = new Uint8Array(Buffer.from(k.export({ format: 'jwk' }).n!, 'base64url'));
  const p: TpmtPublic = { type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00050072, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL }, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: n };
  return serializePublic2b(p);
}

function quote(v: PcrValues, key: KeyObject) {
  const d = createHash('sha256');
  for (const p of SEL[0].pcrs) d.update(v.get(TPM_ALG.SHA256)!.get(p)!);
  const attest = serializeAttest({
    magic: TPM_GENERATED_VALUE, type: TPM_ST.ATTEST_QUOTE, qualifiedSigner: new Uint8Array(34), extraData: Uint8Array.of(1, 2),
    clockInfo: { clock: 5n, resetCount: 0, restartCount: 0, safe: true }, firmwareVersion: 7n,
    attested: { kind: 'quote', pcrSelect: SEL, pcrDigest: new Uint8Array(d.digest()) },
  });
  return { attest, signature: serializeSignature({ sigAlg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256, sig: new Uint8Array(sign('sha256', attest, key)) }) };
}

test('PCR-check memo: a PCR buffer changed in place after a verification is re-checked, not served from the cache', async () => {
  const q = quote(vals(0x10), keys[0].privateKey);
  const ak = akFile(keys[0].publicKey);
  const pcrs = serializePcrsSerialized(SEL, vals(0x10));
  const first = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs } }, { registry });
  assert.equal(first.verified, true, JSON.stringify(first.errors));
  assert.equal(first.claims!.measurements.pcrsha256_7, '17'.repeat(32));
  // Same buffer, PCR 7's value overwritten in place: the digest no longer matches.
  pcrs.set(new Uint8Array(32).fill(0x99), pcrs.indexOf(0x17));
  const second = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs } }, { registry });
  assert.equal(second.errors[0]?.code, 'TPM_PCR_DIGEST_MISMATCH');
  // Restored: verifies again; a change in the unused padding of the serialized layout is a different file, same values.
  pcrs.set(new Uint8Array(32).fill(0x17), pcrs.indexOf(0x99));
  pcrs[pcrs.length - 1] ^= 0xff;
  assert.equal((await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs } }, { registry })).verified, true);
  // The same values in another encoding verify, and their claims are fresh objects each time.
  const marshaled = serializePcrsMarshaled(SEL, vals(0x10));
  const a = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs: marshaled } }, { registry });
  const b = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs: marshaled } }, { registry });
  assert.equal(a.verified && b.verified, true);
  assert.notEqual(a.claims!.measurements, b.claims!.measurements);
  a.claims!.measurements.pcrsha256_0 = 'tampered';
  assert.equal(b.claims!.measurements.pcrsha256_0, '10'.repeat(32));
  const c = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs: marshaled } }, { registry });
  assert.equal(c.claims!.measurements.pcrsha256_0, '10'.repeat(32));
});

test('AK memo: an AK buffer overwritten with another key of the same size is parsed again', async () => {
  const q = quote(vals(0x20), keys[0].privateKey);
  const pcrs = serializePcrsMarshaled(SEL, vals(0x20));
  const ak = akFile(keys[0].publicKey);
  const ok = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs } }, { registry });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  const other = akFile(keys[1].publicKey);
  assert.equal(other.length, ak.length);
  ak.set(other);
  const bad = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs } }, { registry });
  assert.equal(bad.errors[0]?.code, 'TPM_SIGNATURE_INVALID');
  // same tail, different head: still a different key file
  const head = akFile(keys[0].publicKey);
  head[10] ^= 1; // inside the attributes/authPolicy area: a different TPMT_PUBLIC
  const r = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak: head, pcrs } }, { registry });
  assert.equal(r.verified, false);
});

test('event-log replay memo: a changed log (new bytes or edited in place) or changed PCR values is never served from the cache', async () => {
  const { buildEventLog } = await import('../../support/eventlog-builder.js');
  const events = (boot: string) => [
    { pcr: 0, type: 0x80000008, data: Buffer.from('firmware 1.0') },
    { pcr: 7, type: 0x80000001, data: Buffer.from('SecureBoot on') },
    { pcr: 1, type: 0x80000003, data: Buffer.from(boot) },
  ];
  const valuesOf = (boot: string): PcrValues => {
    const m = new Map<number, Uint8Array>(SEL[0].pcrs.map((p) => [p, new Uint8Array(32)]));
    for (const d of buildEventLog(events(boot)).digests) m.set(d.pcr, new Uint8Array(createHash('sha256').update(m.get(d.pcr)!).update(d.digest).digest()));
    return new Map([[TPM_ALG.SHA256, m]]);
  };
  const ak = akFile(keys[1].publicKey);
  const check = async (boot: string, log: Uint8Array) => {
    const v = valuesOf(boot);
    const q = quote(v, keys[1].privateKey);
    return verifyEvidence({ evidence: q.attest, attachments: { signature: q.signature, ak, pcrs: serializePcrsSerialized(SEL, v), eventlog: log } }, { registry });
  };
  const good = buildEventLog(events('grub 2.12')).log;
  const first = await check('grub 2.12', good);
  assert.equal(first.verified, true, JSON.stringify(first.errors));
  assert.deepEqual((first.claims!.raw as any).eventLog, { format: 'crypto-agile', events: 4, replayedPcrs: ['sha256:0', 'sha256:1', 'sha256:7'] });
  // The cached log again: same answer.
  assert.equal((await check('grub 2.12', good)).verified, true);
  // Another log for the same quote: recomputed, and it does not replay.
  assert.equal((await check('grub 2.12', buildEventLog(events('grub 2.13')).log)).errors[0]?.code, 'TPM_EVENTLOG_MISMATCH');
  // The cached log's bytes edited in place (one event's data and digest): not the cached replay.
  const saved = Buffer.from(good);
  const other = buildEventLog(events('grub 2.1X')).log;
  assert.equal(good.length, other.length);
  good.set(other);
  assert.equal((await check('grub 2.12', good)).errors[0]?.code, 'TPM_EVENTLOG_MISMATCH');
  good.set(saved);
  // The cached log with a quote over other PCR values (the node booted something else): the comparison is per quote.
  assert.equal((await check('grub 2.13', good)).errors[0]?.code, 'TPM_EVENTLOG_MISMATCH');
  // And the other boot with its own log verifies.
  assert.equal((await check('grub 2.13', buildEventLog(events('grub 2.13')).log)).verified, true);
});
