import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { world } from '../../support/dcap-helpers.js';
import { dcapFuzzCases, equivalent, lengthFields, mutate, rng } from '../../support/quote-fuzz.js';

const PER_QUOTE = 600;

test('fuzz: mutated quotes never throw out of verifyEvidence and never verify', async () => {
  const w = await world();
  const registry = createVerifierRegistry();
  const cases = await dcapFuzzCases(w);
  let n = 0;
  const codes = new Map<string, number>();
  for (const [i, c] of cases.entries()) {
    const base = await verifyEvidence(c.q, { registry, ...c.opts });
    assert.equal(base.verified, true, `case ${i} must verify unmutated: ${JSON.stringify(base.errors)}`);
    const fields = lengthFields(c.q);
    const r = rng(1234 + i);
    for (let k = 0; k < PER_QUOTE; k++) {
      const m = mutate(c.q, fields, r);
      if (equivalent(c.q, m)) continue;
      const res = await verifyEvidence(m, { registry, ...c.opts }); // must not throw
      n++;
      assert.equal(res.verified, false, `case ${i} mutation ${k} verified`);
      assert.ok(res.errors.length > 0);
      assert.notEqual(res.errors[0].code, 'INTERNAL', res.errors[0].message);
      codes.set(res.errors[0].code, (codes.get(res.errors[0].code) ?? 0) + 1);
    }
  }
  assert.ok(n > 2000, `only ${n} mutations ran`);
  assert.ok(codes.size >= 5, `few distinct rejections: ${[...codes.keys()].join(', ')}`);
});
