import { parse } from 'yaml';
import type { Claims } from '../tee/common/claims.js';
import { appraise } from './appraise.js';
import type { TrustOptions } from './trust.js';
import { PolicyError, parsePolicy } from './load.js';
import { assertYamlDepth } from '../tee/common/nesting.js';
import type { AppraisalPolicy, EarStatus } from './types.js';

/**
 * The declarative attestation policy: reference values (an AppraisalPolicy, usually stored separately and named
 * by id) plus rules mapping claims to an EAR status. Each failed rule yields its own reason. Pure functions only.
 *
 * ```yaml
 * referenceValues: prod-rv        # id of a stored reference-values document (optional)
 * rules:
 *   - id: svn-current
 *     claim: svns.svn             # dotted path into the normalized claims (raw.* reaches TEE-specific fields)
 *     gte: 2                      # one of: eq, in, notIn, gte, lte, exists
 *     status: warning             # EAR status when the rule fails (default contraindicated)
 *     vector: hardware            # EAR trustworthiness-vector claim it lowers (default configuration)
 *     reason: firmware older than the fleet baseline
 * ```
 */
export const TRUST_VECTOR_KEYS = [
  'instance-identity', 'configuration', 'executables', 'file-system', 'hardware', 'runtime-opaque', 'storage-opaque', 'sourced-data',
] as const;
export type TrustVectorKey = (typeof TRUST_VECTOR_KEYS)[number];
export type TrustVector = Record<TrustVectorKey, number>;

type Op = 'eq' | 'in' | 'notIn' | 'gte' | 'lte' | 'exists';
const OPS: Op[] = ['eq', 'in', 'notIn', 'gte', 'lte', 'exists'];

export interface PolicyRule {
  id: string;
  claim: string;
  op: Op;
  value: unknown;
  status: Exclude<EarStatus, 'affirming'>;
  vector: TrustVectorKey;
  reason?: string;
}

export interface RulePolicy {
  referenceValues?: string;
  rules: PolicyRule[];
}

export interface PolicyFailure {
  rule: string;
  code: string;
  message: string;
  status: Exclude<EarStatus, 'affirming'>;
}

export interface PolicyVerdict {
  status: EarStatus;
  failures: PolicyFailure[];
  warnings: string[];
  trustVector: TrustVector;
}

export function parseRulePolicy(text: string): RulePolicy {
  let doc: unknown;
  try {
    // Depth bounded before the composer recurses; yaml's own maxAliasCount (100) refuses alias bombs.
    assertYamlDepth(text, 'policy');
    doc = parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new PolicyError('POLICY_INVALID', `policy is not valid YAML/JSON: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return { rules: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new PolicyError('POLICY_INVALID', 'policy must be a map');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'referenceValues' && k !== 'rules') throw new PolicyError('POLICY_INVALID', `unknown policy key '${k}' (known: referenceValues, rules)`);
  const out: RulePolicy = { rules: [] };
  if (o.referenceValues !== undefined) {
    if (typeof o.referenceValues !== 'string' || !o.referenceValues) throw new PolicyError('POLICY_INVALID', 'referenceValues must be a document id');
    out.referenceValues = o.referenceValues;
  }
  if (o.rules !== undefined) {
    if (!Array.isArray(o.rules)) throw new PolicyError('POLICY_INVALID', 'rules must be a list');
    const seen = new Set<string>();
    out.rules = o.rules.map((r, i) => {
      const rule = parseRule(r, i);
      if (seen.has(rule.id)) throw new PolicyError('POLICY_INVALID', `rule id '${rule.id}' is used twice`);
      seen.add(rule.id);
      return rule;
    });
  }
  return out;
}

function parseRule(r: unknown, i: number): PolicyRule {
  const where = `rules[${i}]`;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new PolicyError('POLICY_INVALID', `${where} must be a map`);
  const o = r as Record<string, unknown>;
  const allowed = new Set(['id', 'claim', 'status', 'vector', 'reason', ...OPS]);
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw new PolicyError('POLICY_INVALID', `${where}: unknown key '${k}'`);
  if (typeof o.id !== 'string' || !o.id) throw new PolicyError('POLICY_INVALID', `${where}.id must be a non-empty string`);
  if (typeof o.claim !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(o.claim)) throw new PolicyError('POLICY_INVALID', `${where}.claim must be a dotted claim path`);
  const ops = OPS.filter((k) => k in o);
  if (ops.length !== 1) throw new PolicyError('POLICY_INVALID', `${where} must have exactly one of ${OPS.join(', ')}`);
  const op = ops[0];
  const value = o[op];
  if ((op === 'in' || op === 'notIn') && !Array.isArray(value)) throw new PolicyError('POLICY_INVALID', `${where}.${op} must be a list`);
  if ((op === 'gte' || op === 'lte') && typeof value !== 'number') throw new PolicyError('POLICY_INVALID', `${where}.${op} must be a number`);
  if (op === 'exists' && typeof value !== 'boolean') throw new PolicyError('POLICY_INVALID', `${where}.exists must be true or false`);
  const status = o.status ?? 'contraindicated';
  if (status !== 'warning' && status !== 'contraindicated') throw new PolicyError('POLICY_INVALID', `${where}.status must be warning or contraindicated`);
  const vector = o.vector ?? 'configuration';
  if (!(TRUST_VECTOR_KEYS as readonly unknown[]).includes(vector)) throw new PolicyError('POLICY_INVALID', `${where}.vector must be one of ${TRUST_VECTOR_KEYS.join(', ')}`);
  if (o.reason !== undefined && typeof o.reason !== 'string') throw new PolicyError('POLICY_INVALID', `${where}.reason must be a string`);
  return { id: o.id, claim: o.claim, op, value, status, vector: vector as TrustVectorKey, ...(o.reason ? { reason: o.reason as string } : {}) };
}

function lookup(claims: Claims, path: string): unknown {
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const same = (a: unknown, b: unknown) =>
  typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : JSON.stringify(a) === JSON.stringify(b);

function holds(rule: PolicyRule, got: unknown): boolean {
  switch (rule.op) {
    case 'exists': return (got !== undefined) === rule.value;
    case 'eq': return got !== undefined && same(got, rule.value);
    case 'in': return got !== undefined && (rule.value as unknown[]).some((v) => same(got, v));
    case 'notIn': {
      const vals = Array.isArray(got) ? got : [got];
      return !vals.some((g) => (rule.value as unknown[]).some((v) => same(g, v)));
    }
    case 'gte': return typeof got === 'number' && got >= (rule.value as number);
    case 'lte': return typeof got === 'number' && got <= (rule.value as number);
  }
}

/** Which trust-vector claim each reference-value rule speaks for. */
function vectorFor(rule: string): TrustVectorKey {
  if (rule === 'trust') return 'instance-identity';
  if (rule === 'dev') return 'configuration';
  if (rule.startsWith('measurements.')) return 'executables';
  if (rule === 'allowDebug') return 'configuration';
  return 'hardware';
}

const TIER: Record<EarStatus, number> = { affirming: 2, warning: 32, contraindicated: 96 };

/**
 * Reference values (via appraise) + rules → EAR status, one explained failure per broken rule, and a trust vector
 * whose worst tier equals the status (EAR's own status rule).
 */
export function evaluatePolicy(claims: Claims, referenceValues: AppraisalPolicy, policy: RulePolicy = { rules: [] }, trust: TrustOptions = {}): PolicyVerdict {
  const a = appraise(claims, referenceValues, trust);
  const failures: PolicyFailure[] = a.failures.map((f) => ({ ...f, status: 'contraindicated' as const }));
  const vector: TrustVector = {
    'instance-identity': 0, configuration: 2, executables: Object.keys(referenceValues.measurements ?? {}).length ? 2 : 0,
    'file-system': 0, hardware: 2, 'runtime-opaque': 2, 'storage-opaque': 0, 'sourced-data': 0,
  };
  const lower = (k: TrustVectorKey, status: EarStatus) => {
    vector[k] = Math.max(vector[k], TIER[status]);
  };
  for (const f of a.failures) lower(vectorFor(f.rule), 'contraindicated');
  for (const rule of policy.rules) {
    const got = lookup(claims, rule.claim);
    if (holds(rule, got)) continue;
    const shown = got === undefined ? '(absent)' : JSON.stringify(got);
    failures.push({
      rule: rule.id, code: 'POLICY_RULE_FAILED', status: rule.status,
      message: `${rule.reason ?? `rule ${rule.id} failed`}: ${rule.claim} is ${shown}, expected ${rule.op} ${JSON.stringify(rule.value)}`,
    });
    lower(rule.vector, rule.status);
  }
  if (a.status === 'warning' && a.failures.length === 0) lower('hardware', 'warning');
  let worst = 0; // the highest tier (an array and a spread call per attestation before)
  for (const k in vector) if (vector[k as TrustVectorKey] > worst) worst = vector[k as TrustVectorKey];
  const status: EarStatus = worst >= 96 ? 'contraindicated' : worst >= 32 ? 'warning' : 'affirming';
  return { status, failures, warnings: a.warnings, trustVector: vector };
}

export { parsePolicy };
