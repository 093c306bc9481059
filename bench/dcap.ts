/**
 * `npm run bench:dcap`: DCAP quote verifications per second on one core with warm caches, the cold (first)
 * verification time, and in the same run the floor: the two raw ECDSA P-256 verifies every quote needs (quote
 * signature by the attestation key, QE report signature by the PCK key) with ready KeyObjects. Ratio =
 * floor rate / warm rate (1.0 would be a verifier doing nothing but those two verifies). Bounded to ~20 s.
 */
import { join } from 'node:path';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import { verifyEvidence, createVerifierRegistry } from '../src/index.js';
import { BundleCollateralProvider, openDcapCollateral } from '../src/tee/dcap/collateral.js';
import { parseQuote } from '../src/tee/dcap/quote.js';
import { createDcapWorld } from '../test/support/dcap-world.js';
import { haveVectors, readVector, vectorsDir } from '../test/support/vectors.js';

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
}

const w = await createDcapWorld();
/** Collateral served the way `--collateral` and the service serve it: through a provider. */
async function testProvider(tee: 'sgx' | 'tdx'): Promise<BundleCollateralProvider> {
  const c = await w.collateral(tee);
  return new BundleCollateralProvider({ tcbInfos: [c.tcbInfo], qeIdentities: [c.qeIdentity], certs: c.certs, crls: c.crls });
}
const cases: Case[] = [
  { name: 'SGX v3 (test PKI)', quote: await w.quote({ tee: 'sgx', version: 3 }), opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider: await testProvider('sgx') } } },
  { name: 'TDX v4 (test PKI)', quote: await w.quote({ tee: 'tdx', version: 4 }), opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider: await testProvider('tdx') } } },
  { name: 'TDX v5 TD1.5 (test PKI)', quote: await w.quote({ tee: 'tdx', version: 5, td15: true }), opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { provider: await testProvider('tdx') } } },
];
if (haveVectors) {
  const at = new Date('2025-07-01T00:00:00Z');
  cases.push(
    { name: 'SGX v3 (real, dcap-qvl)', quote: readVector('sgx/dcap-qvl_sgx_quote.bin'), opts: { at, dcap: { provider: await openDcapCollateral(join(vectorsDir, 'collateral/dcap-qvl_sgx_quote_collateral.json')) } } },
    { name: 'TDX v4 (real, dcap-qvl)', quote: readVector('tdx/dcap-qvl_tdx_quote_v4.bin'), opts: { at, dcap: { provider: await openDcapCollateral(join(vectorsDir, 'collateral/dcap-qvl_tdx_quote_collateral.json')) } } },
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
