import { parse } from 'yaml';
import { TCB_STATUSES, TEE_TYPES } from '../tee/common/claims.js';
import { CofferError } from '../tee/common/errors.js';
import type { AppraisalPolicy } from './types.js';
import { assertYamlDepth } from '../tee/common/nesting.js';
import { parseSnpPolicy } from './snp.js';

export class PolicyError extends CofferError {}

const KEYS = new Set(['tees', 'allowDebug', 'allowedTcbStatuses', 'allowedAdvisories', 'measurements', 'minSvns', 'platform', 'snp', 'dev']);

function stringList(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new PolicyError('POLICY_INVALID', `${where} must be a list of strings`);
  }
  return v;
}

function record<T>(v: unknown, where: string, each: (x: unknown, w: string) => T): Record<string, T> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PolicyError('POLICY_INVALID', `${where} must be a map`);
  // No key naming an Object.prototype member (`__proto__`, `constructor`, `toString`): looked up on plain objects
  // later, such keys found functions instead of values. (With those refused, assigning below is safe.)
  const out: Record<string, T> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k in Object.prototype) throw new PolicyError('POLICY_INVALID', `${where}: '${k}' is not allowed as a key`);
    out[k] = each(x, `${where}.${k}`);
  }
  return out;
}

/** Parses and validates a policy document (YAML or JSON). Unknown keys and wrong types are errors, not ignored. */
export function parsePolicy(text: string): AppraisalPolicy {
  let doc: unknown;
  try {
    // Depth bounded before the composer recurses; yaml's own maxAliasCount (100) refuses alias bombs.
    assertYamlDepth(text, 'policy');
    doc = parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new PolicyError('POLICY_INVALID', `policy is not valid YAML/JSON: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new PolicyError('POLICY_INVALID', 'policy must be a map');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.has(k)) throw new PolicyError('POLICY_INVALID', `unknown policy key '${k}' (known: ${[...KEYS].join(', ')})`);
  }
  const p: AppraisalPolicy = {};
  if (o.tees !== undefined) {
    const t = stringList(o.tees, 'tees');
    for (const x of t) if (!(TEE_TYPES as readonly string[]).includes(x)) throw new PolicyError('POLICY_INVALID', `unknown TEE '${x}' in tees`);
    p.tees = t as AppraisalPolicy['tees'];
  }
  if (o.dev !== undefined) {
    if (typeof o.dev !== 'boolean') throw new PolicyError('POLICY_INVALID', 'dev must be true or false');
    p.dev = o.dev;
  }
  if (o.allowDebug !== undefined) {
    if (typeof o.allowDebug !== 'boolean') throw new PolicyError('POLICY_INVALID', 'allowDebug must be true or false');
    p.allowDebug = o.allowDebug;
  }
  if (o.allowedTcbStatuses !== undefined) {
    const s = stringList(o.allowedTcbStatuses, 'allowedTcbStatuses');
    for (const x of s) {
      if (!(TCB_STATUSES as readonly string[]).includes(x)) throw new PolicyError('POLICY_INVALID', `unknown TCB status '${x}'`);
    }
    p.allowedTcbStatuses = s as AppraisalPolicy['allowedTcbStatuses'];
  }
  if (o.allowedAdvisories !== undefined) p.allowedAdvisories = stringList(o.allowedAdvisories, 'allowedAdvisories');
  if (o.measurements !== undefined) p.measurements = record(o.measurements, 'measurements', (x, w) => stringList(x, w));
  if (o.platform !== undefined) p.platform = record(o.platform, 'platform', (x, w) => stringList(x, w));
  if (o.minSvns !== undefined) {
    p.minSvns = record(o.minSvns, 'minSvns', (x, w) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new PolicyError('POLICY_INVALID', `${w} must be a non-negative integer`);
      return x;
    });
  }
  if (o.snp !== undefined) p.snp = parseSnpPolicy(o.snp, (m) => new PolicyError('POLICY_INVALID', m));
  return p;
}
