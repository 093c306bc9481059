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
