/**
 * `npm run bench:dcap`: DCAP quote verifications per second on one core with warm caches, the cold (first)
 * verification time, and in the same run the floor: the two raw ECDSA P-256 verifies every quote needs (quote
 * signature by the attestation key, QE report signature by the PCK key) with ready KeyObjects. Ratio =
 * floor rate / warm rate (1.0 would be a verifier doing nothing but those two verifies).
 * Then the first-verification paths a fleet pays: cold (a fresh registry, nothing cached, collateral given) and
 * "new platform, warm collateral" (a PCK certificate never seen, collateral already verified), medians over fresh
 * runs, and on the real vectors the npm peers @phala/dcap-qvl (JS) and @phala/dcap-qvl-web (Rust dcap-qvl in
 * WASM), which cache nothing (every call is their uncached path), on the same quote and collateral in the same run.
 * Targets: cold <= 10 ms, new platform <= 1.5 ms, faster than every peer. Bounded to ~40 s.
 */
import { join } from 'node:path';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import { verifyEvidence, createVerifierRegistry } from '../src/index.js';
import { BundleCollateralProvider, openDcapCollateral } from '../src/tee/dcap/collateral.js';
import { parseQuote } from '../src/tee/dcap/quote.js';
import { createDcapWorld } from '../test/support/dcap-world.js';
import { haveVectors, readVector, vectorsDir } from '../test/support/vectors.js';
import { PCK_COMPS, PCK_PCESVN, SGX_FMSPC, TDX_FMSPC } from '../test/support/dcap-world.js';
import { readFileSync } from 'node:fs';
import { dcapPeers, median } from './peers.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SLICE_MS = 50;

/**
 * The machine is shared, so load drifts: the floor and the verifier are measured in interleaved 50 ms slices and
 * each rate is taken from its best slices (the median of the fastest half), which tracks the unloaded speed.
 */
async function interleaved(a: () => unknown, b: () => Promise<unknown>): Promise<[number, number]> {
  for (let i = 0; i < 300; i++) (a(), await b()); // JIT warm-up
  const ra: number[] = [];
  const rb: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    let t = performance.now();
    let n = 0;
    while (performance.now() - t < SLICE_MS) (a(), n++);
    ra.push((n * 1000) / (performance.now() - t));
    t = performance.now();
    n = 0;
    while (performance.now() - t < SLICE_MS) (await b(), n++);
    rb.push((n * 1000) / (performance.now() - t));
  }
  const best = (xs: number[]) => xs.sort((x, y) => y - x)[Math.floor(xs.length / 4)];
  return [best(ra), best(rb)];
}

function floorFor(quote: Uint8Array): () => boolean {
  const q = parseQuote(quote);
  const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), Buffer.from([4]), q.attestKey]);
  const ak = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const pem = Buffer.from(q.certData).toString('latin1');
  const pck = new X509Certificate(pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25)).publicKey;
  return () =>
    verify('sha256', q.signedData, { key: ak, dsaEncoding: 'ieee-p1363' }, q.signature) &&
    verify('sha256', q.qeReport, { key: pck, dsaEncoding: 'ieee-p1363' }, q.qeReportSignature);
}

interface Case {
  name: string;
  quote: Uint8Array;
  opts: Record<string, unknown>;
  /** A fresh provider over the same collateral bytes (cold runs must not share its parsed state). */
  fresh: () => Promise<unknown>;
  /** The real vectors: dcap-qvl QuoteCollateralV3 JSON for the peers. */
  peerCollateral?: Record<string, string>;
}

const w = await createDcapWorld();
/** Collateral served the way `--collateral` and the service serve it: through a provider. */
async function testProvider(tee: 'sgx' | 'tdx'): Promise<BundleCollateralProvider> {
  const c = await w.collateral(tee);
  return new BundleCollateralProvider({ tcbInfos: [c.tcbInfo], qeIdentities: [c.qeIdentity], certs: c.certs, crls: c.crls });
}
const testCase = async (name: string, tee: 'sgx' | 'tdx', quote: Uint8Array): Promise<Case> => ({
  name,
  quote,
  opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider: await testProvider(tee) } },
  fresh: () => testProvider(tee),
});
const cases: Case[] = [
  await testCase('SGX v3 (test PKI)', 'sgx', await w.quote({ tee: 'sgx', version: 3 })),
  await testCase('TDX v4 (test PKI)', 'tdx', await w.quote({ tee: 'tdx', version: 4 })),
  await testCase('TDX v5 TD1.5 (test PKI)', 'tdx', await w.quote({ tee: 'tdx', version: 5, td15: true })),
];
if (haveVectors) {
  const at = new Date('2025-07-01T00:00:00Z');
  const real = async (name: string, quote: string, coll: string): Promise<Case> => {
    const path = join(vectorsDir, coll);
    return {
      name,
      quote: readVector(quote),
      opts: { at, dcap: { provider: await openDcapCollateral(path) } },
      fresh: () => openDcapCollateral(path),
      peerCollateral: JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>,
    };
  };
  cases.push(
    await real('SGX v3 (real, dcap-qvl)', 'sgx/dcap-qvl_sgx_quote.bin', 'collateral/dcap-qvl_sgx_quote_collateral.json'),
    await real('TDX v4 (real, dcap-qvl)', 'tdx/dcap-qvl_tdx_quote_v4.bin', 'collateral/dcap-qvl_tdx_quote_collateral.json'),
  );
}

for (const c of cases) {
  const registry = createVerifierRegistry();
  const t0 = performance.now();
  const first = await verifyEvidence(c.quote, { registry, ...c.opts });
  const cold = performance.now() - t0;
  if (!first.verified) throw new Error(`${c.name} does not verify: ${JSON.stringify(first.errors)}`);
  const floorFn = floorFor(c.quote);
  if (!floorFn()) throw new Error('floor self-check failed');
  const [floor, warm] = await interleaved(floorFn, async () => {
    const r = await verifyEvidence(c.quote, { registry, ...c.opts });
    if (!r.verified) throw new Error('warm verification failed');
  });
  console.log(
    `${c.name}: warm ${warm.toFixed(0)} verifications/s (${(1e6 / warm).toFixed(1)} µs), cold first ${cold.toFixed(1)} ms; ` +
      `floor (2 raw P-256 verifies) ${floor.toFixed(0)}/s (${(1e6 / floor).toFixed(1)} µs); ratio ${(floor / warm).toFixed(2)}x ` +
      `(targets: >= 5000/s, <= 1.5x)`,
  );
}

// --- First verifications: cold, new platform with warm collateral, and the npm peers on the same inputs ---
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const peers = haveVectors ? await dcapPeers() : [];
if (!haveVectors) console.log('bench: ../shared/vectors absent: the npm peers (which need Intel-rooted quotes) are skipped');

async function coldMs(c: Case): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const provider = await c.fresh();
    const registry = createVerifierRegistry(); // nothing cached: every certificate, CRL and signed item is new to it
    const t0 = performance.now();
    const r = await verifyEvidence(c.quote, { registry, ...c.opts, dcap: { provider } });
    times.push(performance.now() - t0);
    if (!r.verified) throw new Error(`${c.name}: cold verification failed: ${JSON.stringify(r.errors)}`);
  }
  return median(times);
}

for (const c of cases) {
  const cold = await coldMs(c);
  let line = `${c.name}: cold (fresh registry, collateral given) ${cold.toFixed(2)} ms median of ${ROUNDS} (target <= 10 ms)`;
  if (c.peerCollateral) {
    const nowSecs = Math.floor((c.opts.at as Date).getTime() / 1000);
    for (const p of peers) {
      p.verify(c.quote, c.peerCollateral, nowSecs); // load / JIT once; the peers keep no cache between calls
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = performance.now();
        p.verify(c.quote, c.peerCollateral, nowSecs);
        times.push(performance.now() - t0);
      }
      const m = median(times);
      line += `; ${p.name} ${m.toFixed(2)} ms (Coffer cold / peer = ${(cold / m).toFixed(2)}x)`;
    }
  }
  console.log(line);
}

// New platform, warm collateral: a registry that has verified this collateral meets PCK certificates it never saw.
for (const tee of ['sgx', 'tdx'] as const) {
  const registry = createVerifierRegistry();
  const provider = await testProvider(tee);
  const opts = { registry, at: w.at, trustAnchors: w.trustAnchors, dcap: { provider } };
  const version = tee === 'sgx' ? 3 : 4;
  const warmup = await verifyEvidence(await w.quote({ tee, version }), opts);
  if (!warmup.verified) throw new Error('new-platform warm-up failed');
  // As in bench/snp.ts: the new-platform path runs on WARMUP other PCKs (made, like the timed ones, before it) before
  // it is timed, as in a fleet's first attestations; without it the first samples carried its JIT compilation
  // (1.5 ms falling to 0.85 ms over a run). The first verification of a process is the cold figure above.
  const WARMUP = 10;
  const quotes: Uint8Array[] = [];
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const pck = await w.pki.issuePck(tee === 'sgx' ? 'processor' : 'platform', { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: tee === 'sgx' ? SGX_FMSPC : TDX_FMSPC });
    quotes.push(await w.quote({ tee, version, pck } as Parameters<typeof w.quote>[0]));
  }
  for (const q of quotes.splice(0, WARMUP)) {
    if (!(await verifyEvidence(q, opts)).verified) throw new Error('new-platform warm-up failed');
  }
  const times: number[] = [];
  for (const q of quotes) {
    const t0 = performance.now();
    const r = await verifyEvidence(q, opts);
    times.push(performance.now() - t0);
    if (!r.verified) throw new Error(`new platform verification failed: ${JSON.stringify(r.errors)}`);
  }
  const floorFn = floorFor(quotes[0]!);
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) floorFn();
  const floorMs = (performance.now() - t0) / 200;
  const m = median(times);
  console.log(
    `${tee.toUpperCase()} new platform (PCK never seen, collateral warm): ${m.toFixed(2)} ms median of ${ROUNDS} (target <= 1.5 ms); ` +
      `floor (2 raw P-256 verifies) ${floorMs.toFixed(3)} ms, ratio ${(m / floorMs).toFixed(1)}x`,
  );
}
