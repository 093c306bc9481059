/**
 * `npm run fuzz`: a longer mutation campaign than the fuzz test (default 10^5 inputs; FUZZ_N overrides). Mutates
 * generated SGX v3/v4 and TDX v4/v5 quotes and, when ../shared/vectors is present, the real dcap-qvl quotes.
 * Fails (exit 1) if any mutated quote verifies or any exception escapes verifyEvidence as INTERNAL.
 */
import { verifyEvidence, createVerifierRegistry } from '../src/index.js';
import { createDcapWorld } from '../test/support/dcap-world.js';
import { haveVectors } from '../test/support/vectors.js';
import { dcapFuzzCases, equivalent, lengthFields, mutate, rng } from '../test/support/quote-fuzz.js';

const N = Number(process.env.FUZZ_N ?? 100_000);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

const w = await createDcapWorld();
const registry = createVerifierRegistry();
const cases = await dcapFuzzCases(w);
if (!haveVectors) {
  console.log('fuzz: ../shared/vectors absent, generated quotes only');
}

const t0 = performance.now();
let ran = 0;
let skipped = 0;
const failures: string[] = [];
const codes = new Map<string, number>();
for (const [i, c] of cases.entries()) {
  const base = await verifyEvidence(c.q, { registry, ...c.opts });
  if (!base.verified) throw new Error(`fuzz: ${c.name} does not verify unmutated: ${JSON.stringify(base.errors)}`);
  const fields = lengthFields(c.q);
  const r = rng(seed + i);
  // Each case gets an equal share of N real mutations; no-op mutations (identical content) do not count.
  const quota = Math.min(N, Math.round(((i + 1) * N) / cases.length));
  for (let k = 0; ran < quota; k++) {
    const m = mutate(c.q, fields, r);
    if (equivalent(c.q, m)) {
      skipped++;
      continue;
    }
    ran++;
    let res;
    try {
      res = await verifyEvidence(m, { registry, ...c.opts });
    } catch (e) {
      failures.push(`${c.name} #${k}: exception escaped: ${(e as Error).message}`);
      continue;
    }
    const code = res.errors[0]?.code ?? 'NONE';
    codes.set(code, (codes.get(code) ?? 0) + 1);
    if (res.verified) failures.push(`${c.name} #${k}: mutated quote VERIFIED`);
    else if (code === 'INTERNAL') failures.push(`${c.name} #${k}: INTERNAL ${res.errors[0].message}`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(`fuzz: ${ran} mutated inputs verified-and-rejected (${skipped} no-op mutations skipped), seed ${seed}, ${secs.toFixed(1)} s`);
console.log(`fuzz: rejection codes: ${[...codes.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}=${n}`).join(' ')}`);
if (failures.length > 0) {
  console.log(`fuzz: ${failures.length} FAILURES`);
  for (const f of failures.slice(0, 20)) console.log(`  ${f}`);
  process.exit(1);
}
console.log('fuzz: OK (no mutated quote verified, no exception escaped)');
