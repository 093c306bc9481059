/**
 * SEV-SNP warm verification throughput vs the raw P-384 verify floor, measured in the same run.
 * Warm = one verifier reused (chain verification cached by content hash); per-report work (parse, report
 * signature, TCB/chip binding, windows, claims) runs every time. Prints both rates and the ratio (target ≤ 1.3×).
 * Uses the real virtee Milan report when ../shared/vectors is present, the test PKI otherwise.
 * Then the first-verification paths: cold (a fresh verifier, nothing cached, collateral given; target <= 3 ms) and
 * "new platform, warm collateral" (a VCEK never seen under an ASK/ARK chain already verified; target <= 1.5 ms),
 * medians of fresh runs. npm SEV-SNP peer: @tinfoilsh/verifier is the candidate, but it does not install (its
 * dependency @freedomofpress/tuf-browser@^0.1.11 is not on the registry), so it is reported as skipped.
 * Bounded to ~20 s.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { VerifierRegistry } from '../src/tee/registry.js';
import { verifyEvidenceWith } from '../src/tee/verify-evidence.js';
import { SnpVerifier } from '../src/tee/snp/verifier.js';
import { p1363FromReport } from '../src/tee/snp/verify/signature.js';
import { parseCert } from '../src/tee/snp/certs/parse.js';
import type { VerifyOptions } from '../src/tee/common/verifier.js';
import { haveVectors, readVector } from '../test/support/vectors.js';
import { SnpTestPki, reportFields, signReport, p384 } from '../test/support/snp-pki.js';

interface Fixture {
  name: string;
  evidence: Uint8Array;
  vcekDer: Uint8Array;
  opts: VerifyOptions;
}

function fixture(): Fixture {
  if (haveVectors) {
    const vcekDer = readVector('snp/virtee_vcek_milan.der');
    return {
      name: 'virtee Milan report (real AMD chain, pinned ARK)',
      evidence: readVector('snp/virtee_report_milan.bin'),
      vcekDer,
      opts: { tee: 'snp', at: new Date('2023-05-03T19:23:43Z'), snp: { certs: [vcekDer, readVector('snp/virtee_cert_chain_milan.pem')] } },
    };
  }
  const pki = new SnpTestPki('Milan');
  const fields = reportFields();
  const key = p384();
  const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
  return {
    name: 'generated Milan report (test PKI)',
    evidence: signReport(fields, key.privateKey),
    vcekDer: leaf.der,
    opts: { tee: 'snp', at: new Date('2025-06-01Z'), trustAnchors: pki.trustAnchors, snp: { certs: [leaf.der, pki.chainPem()] } },
  };
}

async function rate(fn: () => unknown | Promise<unknown>, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 20; i++) await fn();
    n += 20;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const f = fixture();
  const reg = new VerifierRegistry([new SnpVerifier()]);
  const first = await verifyEvidenceWith(reg, f.evidence, f.opts);
  if (!first.verified) throw new Error(`fixture does not verify: ${JSON.stringify(first.errors)}`);

  // The floor: exactly the one P-384 verification every report needs, on the same bytes and key.
  const key = parseCert(f.vcekDer, 'vcek').publicKey;
  const sig = p1363FromReport(f.evidence.subarray(0x2a0, 0x2e8), f.evidence.subarray(0x2e8, 0x330))!;
  const signed = f.evidence.subarray(0, 0x2a0);
  const floor = () => {
    if (!cryptoVerify('sha384', signed, { key, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('floor verify failed');
  };
  const full = async () => {
    const r = await verifyEvidenceWith(reg, f.evidence, f.opts);
    if (!r.verified) throw new Error('verification failed during the benchmark');
  };

  await rate(floor, 300);
  await rate(full, 300);
  // Interleaved rounds so both see the same machine load (2 cores shared by several engineers).
  const floors: number[] = [];
  const fulls: number[] = [];
  for (let round = 0; round < 5; round++) {
    floors.push(await rate(floor, 1000));
    fulls.push(await rate(full, 1000));
  }
  const fl = median(floors);
  const fu = median(fulls);
  const ratio = fl / fu;
  console.log(`fixture: ${f.name}`);
  console.log(`raw P-384 verify floor:      ${fl.toFixed(0)} verifies/s (median of 5 x 1 s)`);
  console.log(`warm verifyEvidence (snp):   ${fu.toFixed(0)} verifications/s (median of 5 x 1 s)`);
  console.log(`ratio (floor / warm):        ${ratio.toFixed(3)}x  (target <= 1.3x) ${ratio <= 1.3 ? 'OK' : 'ABOVE TARGET'}`);

  const rounds = Number(process.env.BENCH_ROUNDS ?? 31); // single-shot samples: 31 keep one blip from moving the median
  const floorMs = 1000 / fl;
  const colds: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const fresh = new VerifierRegistry([new SnpVerifier()]); // nothing cached: chain, CRL and VCEK all new to it
    const t0 = performance.now();
    const r = await verifyEvidenceWith(fresh, f.evidence, f.opts);
    colds.push(performance.now() - t0);
    if (!r.verified) throw new Error('cold verification failed');
  }
  const cold = median(colds);
  console.log(`cold (fresh verifier):       ${cold.toFixed(2)} ms median of ${rounds} (target <= 3 ms); ${(cold / floorMs).toFixed(1)}x the P-384 floor`);

  // New platform, warm collateral: each report comes from a chip whose VCEK this verifier has never seen.
  const pki = new SnpTestPki('Milan');
  const warmReg = new VerifierRegistry([new SnpVerifier()]);
  const platform = (i: number) => {
    const fields = reportFields();
    fields.chipId = new Uint8Array(64).fill(i + 1);
    const key = p384();
    const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
    return { evidence: signReport(fields, key.privateKey), opts: { tee: 'snp', at: new Date('2025-06-01Z'), trustAnchors: pki.trustAnchors, snp: { certs: [leaf.der, pki.chainPem()] } } as VerifyOptions };
  };
  // The new-platform path (parse and chain-verify a VCEK never seen) runs on WARMUP other platforms before it is
  // timed, as in a fleet's first attestations. Every platform (keys, RSA-signed certificates) is made before that
  // warm-up, so a major GC their garbage causes, and the recompiling after it, fall before the timed loop: with the
  // platforms made after the warm-up, some runs had every sample 50% slower (1.5-1.9 ms against 1.0-1.1 ms). The
  // first verification of a process, with nothing compiled or cached, is the cold figure above.
  const WARMUP = 10;
  const all = Array.from({ length: WARMUP + rounds }, (_, i) => platform(i + 1));
  for (const p of all.slice(0, WARMUP)) {
    if (!(await verifyEvidenceWith(warmReg, p.evidence, p.opts)).verified) throw new Error('new-platform warm-up failed');
  }
  const platforms = all.slice(WARMUP);
  const news: number[] = [];
  for (const p of platforms) {
    const t0 = performance.now();
    const r = await verifyEvidenceWith(warmReg, p.evidence, p.opts);
    news.push(performance.now() - t0);
    if (!r.verified) throw new Error(`new platform verification failed: ${JSON.stringify(r.errors)}`);
  }
  const np = median(news);
  console.log(`new platform (VCEK unseen):  ${np.toFixed(2)} ms median of ${rounds} (target <= 1.5 ms); ${(np / floorMs).toFixed(1)}x the P-384 floor`);
  console.log('npm SEV-SNP peer:            skipped (@tinfoilsh/verifier does not install: @freedomofpress/tuf-browser@^0.1.11 is not on the registry)');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
