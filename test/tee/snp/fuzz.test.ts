import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidenceWith } from '../../../src/tee/verify-evidence.js';
import { VerifierRegistry } from '../../../src/tee/registry.js';
import { SnpVerifier } from '../../../src/tee/snp/verifier.js';
import { REPORT_SIZE } from '../../../src/tee/snp/abi/report.js';
import { CERT_GUIDS, serializeCertTable } from '../../../src/tee/snp/abi/cert-table.js';
import { haveVectors, readVector } from '../../support/vectors.js';
import { parseCollateralBlob, type CollateralItems } from '../../../src/tee/snp/certs/parse.js';
import { SnpTestPki, reportFields, signReport, p384 } from '../../support/snp-pki.js';

/** Deterministic PRNG so a failure reproduces (xorshift32). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

interface Seed {
  name: string;
  evidence: Uint8Array;
  opts: Record<string, unknown>;
  /** Certificates that may be mutated too. */
  certs: Uint8Array[];
}

function seeds(): Seed[] {
  const out: Seed[] = [];
  if (haveVectors) {
    out.push(
      { name: 'go-sev-guest', evidence: readVector('snp/go-sev-guest_attestation.bin'), opts: { at: new Date('2022-10-24T00:55:28Z') }, certs: [readVector('snp/go-sev-guest_vcek.der'), readVector('snp/go-sev-guest_milan_cert_chain.pem')] },
      { name: 'virtee', evidence: readVector('snp/virtee_report_milan.bin'), opts: { at: new Date('2023-05-03T19:23:43Z') }, certs: [readVector('snp/virtee_vcek_milan.der'), readVector('snp/virtee_cert_chain_milan.pem')] },
      { name: 'azure', evidence: readVector('tpm/azure/trustee_az-snp-vtpm_hcl-report.bin').slice(0x20, 0x20 + REPORT_SIZE), opts: { at: new Date('2024-01-01Z') }, certs: [readVector('tpm/azure/trustee_az-snp-vtpm_vcek.pem')] },
    );
  }
  for (const [product, version, signingKey] of [['Milan', 2, 'vcek'], ['Genoa', 3, 'vlek'], ['Turin', 5, 'vcek']] as const) {
    const pki = new SnpTestPki(product);
    const fields = reportFields({ product, version, signingKey });
    const key = p384();
    const leaf = pki.leaf({ kind: signingKey, tcb: fields.reportedTcb, chipId: fields.chipId, key });
    out.push({
      name: `${product} v${version} ${signingKey}`,
      evidence: signReport(fields, key.privateKey),
      opts: { at: new Date('2025-06-01Z'), trustAnchors: pki.trustAnchors, crl: pki.crl() },
      certs: [leaf.der, pki.chainPem(signingKey)],
    });
  }
  return out;
}

function leafDer(s: Seed): Uint8Array {
  const items: CollateralItems = { certs: [], crls: [] };
  for (const c of s.certs) parseCollateralBlob(c, s.name, items);
  return items.certs.find((c) => c.role === 'vcek' || c.role === 'vlek')!.der;
}

function mutate(b: Uint8Array, r: (n: number) => number): Uint8Array {
  switch (r(5)) {
    case 0: {
      const m = Uint8Array.from(b);
      m[r(m.length)] ^= 1 + r(255);
      return m;
    }
    case 1: {
      const m = Uint8Array.from(b);
      for (let i = 0, n = 2 + r(6); i < n; i++) m[r(m.length)] = r(256);
      return m.every((x, i) => x === b[i]) ? mutate(b, r) : m;
    }
    case 2:
      return b.slice(0, r(b.length));
    case 3:
      return new Uint8Array([...b, ...new Uint8Array(1 + r(8)).map(() => r(256))]);
    default: {
      // a field-sized block overwritten with random bytes, aligned like the report's fields
      const m = Uint8Array.from(b);
      const at = r(m.length >> 3) << 3;
      for (let i = at; i < Math.min(m.length, at + 8); i++) m[i] = r(256);
      return m.every((x, i) => x === b[i]) ? mutate(b, r) : m;
    }
  }
}

test('fuzz: thousands of mutated reports and certificates never throw and never verify', async () => {
  const reg = new VerifierRegistry([new SnpVerifier()]);
  const all = seeds();
  const r = rng(0xc0ffee);
  let runs = 0;
  let tolerated = 0;
  const codes = new Map<string, number>();
  for (const s of all) {
    const base = { tee: 'snp' as const, ...s.opts, snp: { certs: s.certs, crls: s.opts.crl ? [s.opts.crl] : undefined } };
    const ok = await verifyEvidenceWith(reg, s.evidence, base);
    assert.equal(ok.verified, true, `${s.name} seed must verify: ${JSON.stringify(ok.errors)}`);
    const reportRuns = 700;
    for (let i = 0; i < reportRuns; i++) {
      const m = mutate(s.evidence, r);
      const res = await verifyEvidenceWith(reg, m, base);
      runs++;
      assert.equal(res.verified, false, `${s.name}: mutated report #${i} verified`);
      assert.notEqual(res.errors[0].code, 'INTERNAL', `${s.name}: ${res.errors[0].message}`);
      codes.set(res.errors[0].code, (codes.get(res.errors[0].code) ?? 0) + 1);
    }
    // Mutated VCEK / chain / certificate table.
    for (let i = 0; i < 120; i++) {
      const which = r(s.certs.length);
      const certs = s.certs.map((c, j) => (j === which ? mutate(c, r) : c));
      const viaTable = r(2) === 0;
      const input = viaTable
        ? { evidence: s.evidence, attachments: { certs: mutate(serializeCertTable([{ guid: CERT_GUIDS.vcek, data: s.certs[0] }]), r) } }
        : { evidence: s.evidence };
      const res = await verifyEvidenceWith(reg, input, viaTable ? { ...base, snp: { ...base.snp, certs: s.certs.slice(1) } } : { ...base, snp: { ...base.snp, certs } });
      runs++;
      assert.notEqual(res.errors[0]?.code, 'INTERNAL', `${s.name}: ${res.errors[0]?.message}`);
      if (res.verified) {
        // Legitimate only when the mutation left an intact copy of the original VCEK/VLEK in the collateral
        // (e.g. the PEM's trailing ARK was cut off: the ARK comes from the trust anchors anyway).
        const blobs = viaTable ? [...s.certs.slice(1), input.attachments!.certs] : certs;
        const found = blobs.some((b) => Buffer.from(b).includes(Buffer.from(leafDer(s))) || Buffer.from(b).includes(Buffer.from(leafDer(s)).toString('base64').slice(0, 64)));
        assert.ok(found, `${s.name}: a mutated certificate verified`);
        tolerated++;
      }
    }
  }
  assert.ok(runs >= (all.length >= 6 ? 4000 : 2000), `ran ${runs}`);
  assert.ok(tolerated < all.length * 60, `too many mutated certificate sets verified: ${tolerated}`);
  assert.ok(codes.size >= 6, `expected a variety of rejection codes, got ${[...codes.keys()].join(', ')}`);
});
