import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidence, createVerifierRegistry, type VerificationResult } from '../../../src/index.js';
import { parseCompositeEvidence, type CompositeEvidence } from '../../../src/tee/azure/abi/evidence.js';
import { parseHclReport } from '../../../src/tee/azure/abi/hcl-report.js';
import { rng } from '../../support/quote-fuzz.js';
import { readVector, vectorsSkip } from '../../support/vectors.js';
import { snpComposite } from '../../support/azure-composite.js';

/**
 * Mutations of every part of a composite (HCL report bytes and its length fields, runtime data, quote, signature,
 * PCR list, the JSON text). Oracle: a mutation that leaves every bound byte unchanged (header words nothing
 * depends on, NV padding, hex letter case, JSON whitespace) must still verify; any other must be rejected with a
 * typed code — never INTERNAL, never an exception out of verifyEvidence().
 */
const registry = createVerifierRegistry();
const HCL_WORDS = [0x04, 0x08, 0x0c, 0x10, 0x4c0, 0x4c4, 0x4c8, 0x4cc, 0x4d0];

function mutateBytes(src: Uint8Array, r: () => number, words: number[] = []): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  const b = Buffer.from(src);
  switch (pick(words.length ? 5 : 4)) {
    case 0:
      return new Uint8Array(b.subarray(0, pick(b.length)));
    case 1:
      for (let i = 1 + pick(3); i > 0; i--) b[pick(b.length)] ^= 1 << pick(8);
      return new Uint8Array(b);
    case 2: {
      const at = pick(b.length);
      return new Uint8Array(Buffer.concat([b.subarray(0, at), Buffer.from([pick(256)]), b.subarray(at)]));
    }
    case 3: {
      const at = pick(b.length);
      return new Uint8Array(Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(4))]));
    }
    default: {
      const off = words[pick(words.length)];
      const cur = b.readUInt32LE(off);
      const v = [0, 1, cur + 1, cur - 1, cur + 0x1000, 0xffffffff, 0x80000000][pick(7)] >>> 0;
      b.writeUInt32LE(v, off);
      return new Uint8Array(b);
    }
  }
}

/** What the verifier may depend on: decoded pieces, and of the HCL report only the fields it reads. */
function bound(ev: CompositeEvidence): string {
  let h: string;
  try {
    const p = parseHclReport(ev.hcl);
    h = [p.reportType, p.hashType, p.status, Buffer.from(p.hwReport).toString('hex'), Buffer.from(p.varData).toString('hex')].join('|');
  } catch {
    h = `bad:${Buffer.from(ev.hcl).toString('hex')}`;
  }
  const hex = (b?: Uint8Array) => (b ? Buffer.from(b).toString('hex') : '-');
  return [ev.format, ev.kind, h, hex(ev.quote), hex(ev.signature), hex(ev.pcrs), hex(ev.vcek), hex(ev.tdQuote)].join('/');
}

function boundOf(evidence: Uint8Array, attachments?: Record<string, Uint8Array>): string | undefined {
  try {
    return bound(parseCompositeEvidence(evidence, attachments));
  } catch {
    return undefined;
  }
}

function check(r: VerificationResult, neutral: boolean, what: string): void {
  if (neutral) {
    assert.equal(r.verified, true, `${what}: a mutation of unbound bytes only must still verify: ${JSON.stringify(r.errors)}`);
    return;
  }
  assert.equal(r.verified, false, `${what}: mutated evidence verified`);
  assert.notEqual(r.errors[0]?.code, 'INTERNAL', `${what}: ${r.errors[0]?.message}`);
  assert.match(r.errors[0]?.code ?? '', /^[A-Z0-9_]+$/);
}

async function fuzzJson(json: Uint8Array, opts: Record<string, unknown>, seed: number, n: number, label: string): Promise<void> {
  const r = rng(seed);
  const pick = (k: number) => Math.floor(r() * k);
  const doc = JSON.parse(Buffer.from(json).toString('utf8'));
  const base = boundOf(json);
  const hcl = Buffer.from(doc.hcl_report, 'base64url');
  let stats = { neutral: 0, rejected: 0 };
  for (let i = 0; i < n; i++) {
    let ev: Uint8Array;
    const part = pick(6);
    if (part === 0) ev = mutateBytes(json, r); // the JSON text itself
    else {
      const d = structuredClone(doc);
      if (part === 1) d.hcl_report = Buffer.from(mutateBytes(hcl, r, HCL_WORDS)).toString('base64url');
      else if (part === 2) d.tpm_quote.message = Buffer.from(mutateBytes(Buffer.from(d.tpm_quote.message, 'hex'), r)).toString('hex');
      else if (part === 3) d.tpm_quote.signature = Buffer.from(mutateBytes(Buffer.from(d.tpm_quote.signature, 'hex'), r)).toString('hex');
      else if (part === 4) {
        const k = pick(d.tpm_quote.pcrs.length);
        d.tpm_quote.pcrs[k] = Buffer.from(mutateBytes(Buffer.from(d.tpm_quote.pcrs[k], 'hex'), r)).toString('hex');
      } else d.vcek = Buffer.from(mutateBytes(Buffer.from(d.vcek, 'base64url'), r)).toString('base64url');
      ev = new Uint8Array(Buffer.from(JSON.stringify(d)));
    }
    const neutral = boundOf(ev) === base;
    const res = await verifyEvidence(ev, { registry, ...opts });
    check(res, neutral, `${label} #${i} part ${part}`);
    stats = neutral ? { ...stats, neutral: stats.neutral + 1 } : { ...stats, rejected: stats.rejected + 1 };
  }
  assert.ok(stats.rejected > n * 0.8, JSON.stringify(stats));
  if (process.env.FUZZ_STATS) console.log(label, stats);
}

test('fuzz: generated az-snp-vtpm evidence JSON (every part mutated)', async () => {
  const c = snpComposite();
  await fuzzJson(c.json, c.opts, 0xa2e1, 240, 'generated');
});

test('fuzz: generated az-snp-vtpm files form (HCL report bytes and length words)', async () => {
  const c = snpComposite();
  const attachments = { quote: c.quote.message, signature: c.quote.signature, pcrs: parseCompositeEvidence(c.json).pcrs! };
  const opts = { registry, ...c.opts, snp: { certs: [...c.opts.snp.certs, c.vcek] } };
  const base = boundOf(c.hcl, attachments);
  const r = rng(0x5eed);
  for (let i = 0; i < 160; i++) {
    const hcl = mutateBytes(c.hcl, r, HCL_WORDS);
    const res = await verifyEvidence({ evidence: hcl, attachments }, opts);
    check(res, boundOf(hcl, attachments) === base, `files #${i}`);
  }
});

test('fuzz: real Trustee az-snp-vtpm evidence', { skip: vectorsSkip }, async () => {
  await fuzzJson(readVector('tpm/azure/trustee_az-snp-vtpm_evidence-v1.json'), { at: new Date('2025-06-01Z'), nonce: new Uint8Array(Buffer.from('challenge')) }, 0x7a57, 120, 'real');
});

test('fuzz: generated az-tdx-vtpm evidence JSON (TD quote, HCL report with TDREPORT, vTPM quote)', async () => {
  const { tdxComposite } = await import('../../support/azure-composite.js');
  const c = await tdxComposite();
  const doc = JSON.parse(Buffer.from(c.json).toString('utf8'));
  const base = boundOf(c.json);
  const r = rng(0x7d8);
  const hcl = Buffer.from(doc.hcl_report, 'base64url');
  const td = Buffer.from(doc.td_quote, 'base64url');
  for (let i = 0; i < 60; i++) {
    const d = structuredClone(doc);
    const part = i % 3;
    if (part === 0) d.hcl_report = Buffer.from(mutateBytes(hcl, r, HCL_WORDS)).toString('base64url');
    else if (part === 1) d.td_quote = Buffer.from(mutateBytes(td, r)).toString('base64url');
    else d.tpm_quote.message = Buffer.from(mutateBytes(Buffer.from(d.tpm_quote.message, 'hex'), r)).toString('hex');
    const ev = new Uint8Array(Buffer.from(JSON.stringify(d)));
    check(await verifyEvidence(ev, { registry, ...c.opts }), boundOf(ev) === base, `tdx #${i} part ${part}`);
  }
});
