import type { Store } from '../store/types.js';
import { parsePolicy } from '../policy/load.js';
import { parseRulePolicy, type RulePolicy } from '../policy/rules.js';
import type { AppraisalPolicy } from '../policy/types.js';
import { HttpProblem } from './problem.js';

export interface ResolvedPolicy {
  id: string;
  version: number | null;
  rules: RulePolicy;
  referenceValues: AppraisalPolicy;
  referenceValuesRef: { id: string; version: number } | null;
}

export const DEFAULT_POLICY_ID = 'default';

/**
 * Loads the named policy and its reference values from the store. Absent `default` policy = built-in default
 * (no rules, empty reference values: debug forbidden, sample refused). Any other unknown id is an error, never
 * a silent fallback to a weaker policy.
 */
export async function resolvePolicy(store: Store, id = DEFAULT_POLICY_ID, cache?: ParseCache): Promise<ResolvedPolicy> {
  const doc = await store.getDocument('policy', id);
  if (!doc && id !== DEFAULT_POLICY_ID) throw new HttpProblem(400, 'policy-unknown', 'Unknown policy', `no attestation policy named '${id}'`);
  const rules = doc ? (cache ? cache.rules(doc.body) : parseRulePolicy(doc.body)) : { rules: [] };
  // Reference values: the id the policy names, else the document sharing the policy's id.
  const rvId = rules.referenceValues ?? id;
  const rv = await store.getDocument('reference-values', rvId);
  if (!rv && rules.referenceValues) {
    throw new HttpProblem(409, 'reference-values-missing', 'Reference values missing', `policy '${id}' names reference values '${rvId}', which do not exist`);
  }
  return {
    id, version: doc?.version ?? null, rules,
    referenceValues: rv ? (cache ? cache.referenceValues(rv.body) : parsePolicy(rv.body)) : {},
    referenceValuesRef: rv ? { id: rvId, version: rv.version } : null,
  };
}

/**
 * Resolved policies (policy + its reference values, parsed) per policy id, valid while the store's document
 * version (changed in the same transaction as any document put/delete, by any connection or replica) is
 * unchanged: one primary-key read per attestation instead of two document reads, and a new version still applies
 * to the very next attestation. The version is read BEFORE the documents, so a write racing the load leaves the
 * entry tagged with the older version and it is reloaded next time. Errors (unknown policy) are not cached.
 * Owned by one service instance.
 */
export class PolicyCache {
  private readonly m = new Map<string, { v: number; p: ResolvedPolicy }>();
  constructor(private readonly store: Store, private readonly parsed = new ParseCache(), private readonly max = 64) {}
  async resolve(id = DEFAULT_POLICY_ID): Promise<ResolvedPolicy> {
    const v = await this.store.documentsVersion();
    const hit = this.m.get(id);
    if (hit && hit.v === v) return hit.p;
    const p = Object.freeze(await resolvePolicy(this.store, id, this.parsed));
    if (!hit && this.m.size >= this.max) this.m.delete(this.m.keys().next().value as string);
    this.m.set(id, { v, p });
    return p;
  }
}

/**
 * Parsed-document cache keyed by the document text: only the YAML parse is skipped, so whatever text the store
 * returns is what applies. Owned by one service instance.
 */
export class ParseCache {
  private readonly r = new Map<string, RulePolicy>();
  private readonly v = new Map<string, AppraisalPolicy>();
  constructor(private readonly max = 256) {}
  private get<T>(m: Map<string, T>, body: string, parse: (s: string) => T): T {
    let x = m.get(body);
    if (x === undefined) {
      x = parse(body);
      if (m.size >= this.max) m.delete(m.keys().next().value as string);
      m.set(body, deepFreeze(x));
    }
    // Shared, frozen: appraisal only reads policies, and a mutation would throw rather than leak across requests.
    return x;
  }
  rules(body: string): RulePolicy {
    return this.get(this.r, body, parseRulePolicy);
  }
  referenceValues(body: string): AppraisalPolicy {
    return this.get(this.v, body, parsePolicy);
  }
}

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === 'object' && !ArrayBuffer.isView(x) && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const v of Object.values(x as object)) deepFreeze(v);
  }
  return x;
}
