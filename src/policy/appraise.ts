import type { Claims } from '../tee/common/claims.js';
import type { Appraisal, AppraisalPolicy, RuleFailure } from './types.js';
import { appraiseSnp } from './snp.js';
import { splitTrust, type TrustOptions } from './trust.js';

/**
 * Pure appraisal: verified claims + policy → EAR status with one explained failure per broken rule.
 * Nothing here re-verifies evidence; claims reach this point only after every cryptographic check held. A verifier
 * warning that marks a trust decision as unverified (policy/trust.ts) is a failure here, never a warning.
 */
export function appraise(claims: Claims, policy: AppraisalPolicy = {}, trust: TrustOptions = {}): Appraisal {
  const failures: RuleFailure[] = [];
  const split = splitTrust(claims.warnings, trust);
  const warnings: string[] = split.warnings;
  const fail = (rule: string, code: string, message: string) => failures.push({ rule, code, message });

  if (policy.dev && !trust.devMode) {
    fail('dev', 'DEV_REFERENCE_VALUES', 'these reference values were written by coffer up --dev and are used only by a dev-mode service');
  }
  // Trust before policy: evidence nothing vouches for is contraindicated whatever the reference values say.
  for (const t of split.trustFailures) fail('trust', 'TRUST_UNVERIFIED', `${t.message} (nothing the operator configured vouches for it)`);

  // The dev-only sample TEE proves nothing: it is accepted only where a policy names it explicitly.
  if (claims.tee === 'sample' && !policy.tees?.includes('sample')) {
    fail('tees', 'SAMPLE_NOT_ALLOWED', "sample TEE evidence is accepted only by a policy that lists 'sample' in tees");
  } else if (policy.tees && !policy.tees.includes(claims.tee)) {
    fail('tees', 'TEE_NOT_ALLOWED', `TEE '${claims.tee}' is not one of the allowed TEEs (${policy.tees.join(', ')})`);
  }
  if (claims.debug && policy.allowDebug !== true) {
    fail('allowDebug', 'DEBUG_FORBIDDEN', `the ${claims.tee} evidence comes from a debug-mode TEE, which the policy forbids`);
  }
  if (policy.allowedTcbStatuses) {
    if (!claims.tcbStatus) {
      fail('allowedTcbStatuses', 'TCB_STATUS_UNKNOWN', 'the policy requires a TCB status but the evidence has none');
    } else if (!policy.allowedTcbStatuses.includes(claims.tcbStatus)) {
      fail(
        'allowedTcbStatuses',
        'TCB_STATUS_NOT_ALLOWED',
        `TCB status ${claims.tcbStatus} is not allowed (allowed: ${policy.allowedTcbStatuses.join(', ')})`,
      );
    }
  }
  if (policy.allowedAdvisories) {
    const allowed = new Set(policy.allowedAdvisories.map((a) => a.toUpperCase()));
    const bad = claims.advisories.filter((a) => !allowed.has(a.toUpperCase()));
    if (bad.length > 0) {
      fail('allowedAdvisories', 'ADVISORY_NOT_ALLOWED', `advisories not allowed by the policy: ${bad.join(', ')}`);
    }
  }
  for (const [name, values] of Object.entries(policy.measurements ?? {})) {
    const got = claims.measurements[name];
    if (got === undefined) {
      fail(`measurements.${name}`, 'MEASUREMENT_MISSING', `the evidence has no measurement named ${name}`);
    } else if (!values.some((v) => v.toLowerCase() === got.toLowerCase())) {
      fail(`measurements.${name}`, 'MEASUREMENT_MISMATCH', `${name} ${got} is not one of the ${values.length} accepted values`);
    }
  }
  for (const [name, min] of Object.entries(policy.minSvns ?? {})) {
    const got = claims.svns[name];
    if (got === undefined) {
      fail(`minSvns.${name}`, 'SVN_MISSING', `the evidence has no security version named ${name}`);
    } else if (got < min) {
      fail(`minSvns.${name}`, 'SVN_TOO_LOW', `${name} ${got} is below the minimum ${min}`);
    }
  }
  for (const [name, values] of Object.entries(policy.platform ?? {})) {
    const got = claims.platform[name];
    if (got === undefined || !values.some((v) => v.toLowerCase() === got.toLowerCase())) {
      fail(`platform.${name}`, 'PLATFORM_MISMATCH', `platform ${name} ${got ?? '(absent)'} is not accepted`);
    }
  }
  if (policy.snp) failures.push(...appraiseSnp(claims, policy.snp));

  if (failures.length > 0) return { status: 'contraindicated', failures, warnings };
  if (claims.tcbStatus && claims.tcbStatus !== 'UpToDate') {
    warnings.push(`TCB status is ${claims.tcbStatus}`);
    return { status: 'warning', failures, warnings };
  }
  return { status: warnings.length > 0 ? 'warning' : 'affirming', failures, warnings };
}
