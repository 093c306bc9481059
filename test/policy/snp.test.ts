import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appraise } from '../../src/policy/appraise.js';
import { parsePolicy, PolicyError } from '../../src/policy/load.js';
import { snpClaims } from '../../src/tee/snp/claims.js';
import { parseReport } from '../../src/tee/snp/abi/report.js';
import type { Claims } from '../../src/tee/common/claims.js';
import { reportFields, signReport, p384, tcbFor } from '../support/snp-pki.js';
import { readVector, vectorsSkip } from '../support/vectors.js';

/** Claims exactly as the SNP verifier builds them (from a parsed generated report). */
function claimsOf(spec: Parameters<typeof reportFields>[0] = {}): Claims {
  return snpClaims(parseReport(signReport(reportFields(spec), p384().privateKey)), []);
}

const codes = (c: Claims, yaml: string) => appraise(c, parsePolicy(yaml)).failures.map((f) => f.code).sort();

test('generic rules express SNP measurements, host data, id key digest and per-component minimum TCB', () => {
  const c = claimsOf({ product: 'Turin' });
  assert.deepEqual(codes(c, `measurements:\n  measurement: ["${'22'.repeat(48)}"]\n  hostData: ["${'00'.repeat(32)}"]\nminSvns: { bootloader: 3, tee: 0, snp: 8, microcode: 115, fmc: 1 }`), []);
  assert.deepEqual(codes(c, `measurements:\n  measurement: ["${'23'.repeat(48)}"]\n  idKeyDigest: ["${'01'.repeat(48)}"]\nminSvns: { snp: 9, fmc: 2 }`), [
    'MEASUREMENT_MISMATCH',
    'MEASUREMENT_MISMATCH',
    'SVN_TOO_LOW',
    'SVN_TOO_LOW',
  ]);
  // fmc does not exist on Milan: a policy naming it fails closed
  assert.deepEqual(codes(claimsOf({ product: 'Milan' }), 'minSvns: { fmc: 0 }'), ['SVN_MISSING']);
});

test('debug is forbidden by default (real go-sev-guest report has DEBUG set)', { skip: vectorsSkip }, () => {
  const c = snpClaims(parseReport(readVector('snp/go-sev-guest_attestation.bin')), []);
  assert.equal(c.debug, true);
  assert.deepEqual(codes(c, ''), ['DEBUG_FORBIDDEN']);
  assert.deepEqual(codes(c, 'allowDebug: true'), []);
});

test('snp section: VMPL, signing key, MIGRATE_MA, SMT, ID block, author key', () => {
  assert.deepEqual(codes(claimsOf({ vmpl: 1 }), 'snp: { maxVmpl: 0 }'), ['VMPL_TOO_HIGH']);
  assert.deepEqual(codes(claimsOf({ vmpl: 1 }), 'snp: { maxVmpl: 1 }'), []);
  assert.deepEqual(codes(claimsOf({ signingKey: 'vlek' }), 'snp: { signingKeys: [vcek] }'), ['SIGNING_KEY_NOT_ALLOWED']);
  assert.deepEqual(codes(claimsOf({ signingKey: 'vlek' }), 'snp: { signingKeys: [vcek, vlek] }'), []);
  const ma = claimsOf({ policy: 0x30000n | (1n << 18n) });
  assert.deepEqual(codes(ma, 'snp: {}'), ['MIGRATE_MA_FORBIDDEN']);
  assert.deepEqual(codes(ma, 'snp: { allowMigrateMa: true }'), []);
  assert.deepEqual(codes(claimsOf(), 'snp: { allowSmt: false }'), ['SMT_FORBIDDEN']);
  assert.deepEqual(codes(claimsOf(), 'snp: { requireIdBlock: true, requireAuthorKey: true }'), ['AUTHOR_KEY_MISSING', 'ID_BLOCK_MISSING']);
  assert.deepEqual(codes(claimsOf({ idKeyDigest: new Uint8Array(48).fill(9), authorKeyEn: true }), 'snp: { requireIdBlock: true, requireAuthorKey: true }'), []);
});

test('snp.minTcb on current/committed/launch TCBs and provisional firmware', () => {
  const older = tcbFor('Milan', { bootloader: 2, tee: 0, snp: 5, microcode: 100 });
  const c = claimsOf({ committedTcb: older, launchTcb: older });
  assert.deepEqual(codes(c, 'snp: { minTcb: { current: { snp: 8 }, committed: { snp: 8, microcode: 100 }, launch: { bootloader: 3 } } }'), ['TCB_TOO_LOW', 'TCB_TOO_LOW']);
  assert.deepEqual(codes(c, 'snp: { forbidProvisionalFirmware: true }'), ['PROVISIONAL_FIRMWARE']);
  assert.deepEqual(codes(claimsOf(), 'snp: { forbidProvisionalFirmware: true }'), []);
  assert.deepEqual(codes(claimsOf({ product: 'Milan' }), 'snp: { minTcb: { current: { fmc: 1 } } }'), ['SNP_CLAIM_MISSING']);
  assert.deepEqual(codes(claimsOf({ product: 'Turin' }), 'snp: { minTcb: { current: { fmc: 2 } } }'), ['TCB_TOO_LOW']);
});

test('snp rules apply to composite claims carrying raw.snp and ignore other TEEs', () => {
  const inner = claimsOf({ vmpl: 2 });
  const composite: Claims = { ...inner, tee: 'az-snp-vtpm', raw: { snp: inner.raw } };
  assert.deepEqual(codes(composite, 'snp: { maxVmpl: 0 }'), ['VMPL_TOO_HIGH']);
  const tdx: Claims = { ...inner, tee: 'tdx', raw: {} };
  assert.deepEqual(codes(tdx, 'snp: { maxVmpl: 0 }'), []);
});

test('snp section validation: unknown keys and wrong types are policy errors', () => {
  for (const bad of [
    'snp: 3',
    'snp: { maxVmpl: 4 }',
    'snp: { maxVmpl: -1 }',
    'snp: { signingKeys: [ark] }',
    'snp: { allowSmt: "no" }',
    'snp: { nope: 1 }',
    'snp: { minTcb: { reported: { snp: 1 } } }',
    'snp: { minTcb: { current: { ucode: 1 } } }',
    'snp: { minTcb: { current: { snp: 256 } } }',
  ]) {
    assert.throws(() => parsePolicy(bad), (e: unknown) => e instanceof PolicyError && e.code === 'POLICY_INVALID', bad);
  }
  assert.deepEqual(parsePolicy('snp: { maxVmpl: 0, minTcb: { launch: { snp: 3 } } }').snp, { maxVmpl: 0, minTcb: { launch: { snp: 3 } } });
});
