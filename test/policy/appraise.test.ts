import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appraise } from '../../src/policy/appraise.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Claims } from '../../src/tee/common/claims.js';

const claims = (over: Partial<Claims> = {}): Claims => ({
  tee: 'sgx', measurements: { mrenclave: 'aa'.repeat(32) }, svns: { isvSvn: 3 }, debug: false,
  reportData: '', platform: { fmspc: '00a067110000' }, tcbStatus: 'UpToDate', advisories: [], warnings: [], raw: {},
  ...over,
});

test('empty policy affirms production evidence and forbids debug', () => {
  assert.equal(appraise(claims()).status, 'affirming');
  const a = appraise(claims({ debug: true }));
  assert.equal(a.status, 'contraindicated');
  assert.equal(a.failures[0].code, 'DEBUG_FORBIDDEN');
  assert.equal(appraise(claims({ debug: true }), { allowDebug: true }).status, 'affirming');
});

test('non-UpToDate TCB is a warning unless the policy rules on it', () => {
  assert.equal(appraise(claims({ tcbStatus: 'SWHardeningNeeded' })).status, 'warning');
  const a = appraise(claims({ tcbStatus: 'OutOfDate' }), { allowedTcbStatuses: ['UpToDate'] });
  assert.equal(a.failures[0].code, 'TCB_STATUS_NOT_ALLOWED');
});

test('each broken rule is explained', () => {
  const a = appraise(
    claims({ advisories: ['INTEL-SA-00615'] }),
    { measurements: { mrenclave: ['bb'.repeat(32)], mrsigner: ['cc'] }, minSvns: { isvSvn: 4 }, allowedAdvisories: ['INTEL-SA-00289'], tees: ['tdx'] },
  );
  assert.deepEqual(a.failures.map((f) => f.code).sort(), [
    'ADVISORY_NOT_ALLOWED', 'MEASUREMENT_MISMATCH', 'MEASUREMENT_MISSING', 'SVN_TOO_LOW', 'TEE_NOT_ALLOWED',
  ]);
});

test('policy files are validated strictly', () => {
  assert.deepEqual(parsePolicy('allowDebug: true\nminSvns: {isvSvn: 2}\n'), { allowDebug: true, minSvns: { isvSvn: 2 } });
  assert.deepEqual(parsePolicy('{"allowedTcbStatuses": ["UpToDate"]}'), { allowedTcbStatuses: ['UpToDate'] });
  assert.throws(() => parsePolicy('alowDebug: true'), /unknown policy key/);
  assert.throws(() => parsePolicy('allowedTcbStatuses: [Fine]'), /unknown TCB status/);
  assert.throws(() => parsePolicy('minSvns: {isvSvn: -1}'), /non-negative/);
});

test('an unverified-trust marker is contraindicated whatever the policy; policy facts stay warnings', async () => {
  const { evaluatePolicy } = await import('../../src/policy/rules.js');
  const pinned = 'AK_PINNED_BY_CALLER: the AK was supplied by the caller and is trusted as given';
  // The most permissive policy there is still cannot accept it.
  const lax = { allowDebug: true, tees: ['sgx' as const] };
  const a = appraise(claims({ warnings: [pinned] }), lax);
  assert.equal(a.status, 'contraindicated');
  assert.deepEqual(a.failures.map((f) => [f.rule, f.code]), [['trust', 'TRUST_UNVERIFIED']]);
  assert.deepEqual(a.warnings, []);
  const v = evaluatePolicy(claims({ warnings: [pinned] }), lax);
  assert.equal(v.status, 'contraindicated');
  assert.equal(v.trustVector['instance-identity'], 96);
  // Future markers are recognised by their code's shape.
  for (const w of ['VCEK_CHAIN_UNVERIFIED: x', 'CRL_NOT_CHECKED: y', 'KEY_UNTRUSTED: z']) assert.equal(appraise(claims({ warnings: [w] })).status, 'contraindicated', w);
  // Facts a policy may accept are warnings, not failures.
  for (const w of ['committed TCB differs from current TCB (provisional firmware)', 'PCR_VALUES_ABSENT: only the digest', 'the TCB info expires within a day (x)']) {
    const r = appraise(claims({ warnings: [w] }));
    assert.equal(r.status, 'warning', w);
    assert.deepEqual(r.failures, []);
  }
  // The operator's own CLI pin (coffer verify --ak) is the caller's decision, not an attacker's.
  assert.equal(appraise(claims({ warnings: [pinned] }), {}, { callerPinsKeys: true }).status, 'warning');
});
