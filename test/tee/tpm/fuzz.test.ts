import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { vectorsDir, vectorsSkip, readVector } from '../../support/vectors.js';
import { decodePb, pbBytes } from '../../support/protobuf.js';
import { verifyEvidence, createVerifierRegistry, CofferError } from '../../../src/index.js';
import { parseEventLog, EventLogError } from '../../../src/tee/tpm/eventlog/parse.js';
import { replayEventLog } from '../../../src/tee/tpm/eventlog/replay.js';
import { decodeEvent } from '../../../src/tee/tpm/eventlog/decode.js';
import { hashAlgById } from '../../../src/tee/tpm/abi/constants.js';
import { fromHex, toHex, bytesEqual } from '../../../src/tee/common/hex.js';

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(b: Uint8Array, r: () => number): Uint8Array {
  const k = Math.floor(r() * 4);
  if (k === 0) return b.subarray(0, Math.floor(r() * b.length)); // truncate
  if (k === 1) return Uint8Array.from([...b, ...Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256))]); // extend
  const out = Uint8Array.from(b);
  const flips = 1 + Math.floor(r() * 3);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(r() * out.length);
    out[at] = k === 2 ? out[at] ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
  }
  return out;
}

interface RealQuote {
  name: string;
  evidence: Uint8Array;
  attachments: Record<string, Uint8Array>;
  nonce: Uint8Array;
}

function realQuotes(): RealQuote[] {
  const out: RealQuote[] = [];
  const a = decodePb(readVector('tpm/go-tpm-tools_gce-cos-85-nonce9009.pb'));
  for (const qb of a.get(2) as Uint8Array[]) {
    const q = decodePb(qb);
    const p = decodePb(pbBytes(q, 3)!);
    const bank = hashAlgById(Number(p.get(1)![0]))!.name;
    const map: Record<string, string> = {};
    for (const e of p.get(2) as Uint8Array[]) {
      const kv = decodePb(e);
      map[String(kv.get(1)?.[0] ?? 0n)] = toHex(pbBytes(kv, 2)!);
    }
    out.push({
      name: `gce-${bank}`,
      evidence: pbBytes(q, 1)!,
      attachments: { signature: pbBytes(q, 2)!, ak: pbBytes(a, 1)!, pcrs: new Uint8Array(Buffer.from(JSON.stringify({ [bank]: map }))) },
      nonce: fromHex('9009'),
    });
  }
  const ev = JSON.parse(Buffer.from(readVector('tpm/azure/trustee_az-snp-vtpm_evidence-v1.json')).toString('utf8'));
  const hcl = Buffer.from(ev.hcl_report, 'base64url');
  const n = hcl.readUInt32LE(0x4d0);
  const jwk = JSON.parse(hcl.subarray(0x4d4, 0x4d4 + n).toString('utf8')).keys.find((k: { kid: string }) => k.kid === 'HCLAkPub');
  const msg = fromHex(ev.tpm_quote.message);
  out.push({
    name: 'azure-snp',
    evidence: msg,
    attachments: {
      signature: fromHex(ev.tpm_quote.signature),
      ak: new Uint8Array(Buffer.from(JSON.stringify(jwk))),
      pcrs: new Uint8Array(Buffer.from(JSON.stringify({ sha256: Object.fromEntries(ev.tpm_quote.pcrs.map((x: string, i: number) => [i, x])) }))),
    },
    nonce: new Uint8Array(Buffer.from("challenge")),
  });
  return out;
}

test('fuzz: mutated real quotes and signatures never verify and never escape as untyped errors', { skip: vectorsSkip }, async () => {
  const registry = createVerifierRegistry();
  const r = rng(0xc0ffee);
  const quotes = realQuotes();
  for (const q of quotes) {
    const base = await verifyEvidence({ evidence: q.evidence, attachments: q.attachments }, { registry, nonce: q.nonce });
    assert.equal(base.verified, true, `${q.name}: ${JSON.stringify(base.errors)}`);
  }
  let runs = 0;
  for (let i = 0; i < 1500; i++) {
    const q = quotes[i % quotes.length];
    const target = r() < 0.6 ? 'evidence' : 'signature';
    const orig = target === 'evidence' ? q.evidence : q.attachments.signature;
    const m = mutate(orig, r);
    if (bytesEqual(m, orig)) continue;
    const input = target === 'evidence' ? { evidence: m, attachments: q.attachments } : { evidence: q.evidence, attachments: { ...q.attachments, signature: m } };
    const res = await verifyEvidence(input, { registry, nonce: q.nonce, tee: 'tpm' });
    assert.equal(res.verified, false, `${q.name}: a mutated ${target} verified (iteration ${i})`);
    assert.ok(res.errors.length > 0 && res.errors.every((e) => e.code !== 'INTERNAL'), `${q.name} #${i}: ${JSON.stringify(res.errors)}`);
    runs++;
  }
  assert.ok(runs > 1400);
});

test('fuzz: mutated event logs parse or fail with EventLogError; replay and decode never throw', { skip: vectorsSkip }, () => {
  const r = rng(0xbeef);
  const logs = readdirSync(join(vectorsDir, 'tpm'))
    .filter((f) => f.endsWith('.bin'))
    .map((f) => readVector(join('tpm', f)));
  let malformed = 0;
  for (let i = 0; i < 400; i++) {
    const m = mutate(logs[i % logs.length], r);
    try {
      const log = parseEventLog(m);
      replayEventLog(log);
      for (const e of log.events) decodeEvent(e.type, e.data);
    } catch (e) {
      assert.ok(e instanceof EventLogError && e instanceof CofferError, `iteration ${i}: ${String(e)}`);
      assert.ok(e.offset >= 0 && e.offset <= m.length);
      malformed++;
    }
  }
  assert.ok(malformed > 50, `only ${malformed} mutations were rejected`);
});
