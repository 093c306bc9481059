import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePolicy, parseRulePolicy } from '../../src/policy/rules.js';
import type { Claims } from '../../src/tee/common/claims.js';

const claims: Claims = {
  tee: 'tdx', measurements: { mrtd: 'AA' }, svns: { tee: 3 }, debug: false, reportData: '', platform: {},
  tcbStatus: 'UpToDate', advisories: ['INTEL-SA-1'], warnings: [], raw: { td_attributes: { sept_ve_disable: true } },
};

test('rules map claims to EAR status with one reason per failed rule; vector worst tier = status', () => {
  const p = parseRulePolicy(`
rules:
  - { id: mrtd, claim: measurements.mrtd, in: [aa, bb], vector: executables }
  - { id: svn, claim: svns.tee, gte: 4, status: warning, vector: hardware, reason: TDX module too old }
  - { id: adv, claim: advisories, notIn: [INTEL-SA-1], status: warning }
  - { id: raw, claim: raw.td_attributes.sept_ve_disable, eq: true }
  - { id: present, claim: platform.fmspc, exists: false }
`);
  const v = evaluatePolicy(claims, {}, p);
  assert.equal(v.status, 'warning');
  assert.deepEqual(v.failures.map((f) => f.rule), ['svn', 'adv']);
  assert.match(v.failures[0].message, /^TDX module too old: svns.tee is 3, expected gte 4$/);
  assert.equal(v.trustVector.hardware, 32);
  assert.equal(v.trustVector.executables, 0);
  const hard = evaluatePolicy(claims, { measurements: { mrtd: ['cc'] } }, p);
  assert.equal(hard.status, 'contraindicated');
  assert.equal(hard.trustVector.executables, 96);
  assert.equal(evaluatePolicy({ ...claims, advisories: [], svns: { tee: 9 } }, { measurements: { mrtd: ['aa'] } }, p).status, 'affirming');
});

test('policy documents are validated strictly', () => {
  for (const bad of [
    'rules: 3', 'other: 1', 'rules: [{ id: a, claim: x }]', 'rules: [{ id: a, claim: x, gte: 1, lte: 2 }]',
    'rules: [{ id: a, claim: x, in: 3 }]', 'rules: [{ id: a, claim: x, eq: 1, status: affirming }]',
    'rules: [{ id: a, claim: x, eq: 1, vector: nope }]', 'rules: [{ id: a, claim: x, eq: 1 }, { id: a, claim: y, eq: 1 }]',
    'referenceValues: ""',
  ]) {
    assert.throws(() => parseRulePolicy(bad), { code: 'POLICY_INVALID' }, bad);
  }
  assert.deepEqual(parseRulePolicy(''), { rules: [] });
});
