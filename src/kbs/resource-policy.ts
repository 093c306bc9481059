import { KbsError } from './errors.js';

/**
 * Coffer's resource policy (Trustee uses Rego here; Coffer evaluates a small declarative document instead).
 * A resource is released iff some rule matches its path AND every condition of that rule holds. No rule → deny.
 *
 * ```json
 * {"rules": [{"resources": ["default/key/*"], "tees": ["tdx", "sample"], "status": ["affirming"],
 *             "measurements": {"launch_digest": ["abcde"]}}]}
 * ```
 * `resources` globs match per segment (`*` = any one segment's text); `tees`, `status`, `measurements` are
 * optional conditions on the attestation token. `images` (sha256 digests, e.g. those `coffer image verify`
 * printed): the workload must have attested the digests of the images it runs (runtime-data `image-digests`,
 * bound into its evidence) and every one of them must be listed — a secret reaches only signed images.
 */
export interface ResourceRule {
  resources: string[];
  tees?: string[];
  status?: string[];
  measurements?: Record<string, string[]>;
  images?: string[];
}

export interface ResourcePolicy {
  rules: ResourceRule[];
}

/** What the policy sees of a verified token. */
export interface TokenFacts {
  tee: string | undefined;
  status: string | undefined;
  measurements: Record<string, string>;
  /** Image digests the workload attested (runtime data); empty when it claimed none. */
  imageDigests?: string[];
}

export interface PolicyDecision {
  allow: boolean;
  rule?: number;
  reason: string;
}

export const ALLOW_ALL: ResourcePolicy = { rules: [{ resources: ['*/*/*'] }] };
export const DENY_ALL: ResourcePolicy = { rules: [] };
export const AFFIRMING: ResourcePolicy = { rules: [{ resources: ['*/*/*'], status: ['affirming'] }] };

const strList = (v: unknown, where: string): string[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KbsError('ParsePolicyError', `${where} must be a list of strings`);
  return v;
};

export function parseResourcePolicy(text: string): ResourcePolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KbsError('ParsePolicyError', 'the resource policy must be a Coffer JSON policy ({"rules":[...]}); Rego is not supported');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KbsError('ParsePolicyError', 'the resource policy must be a JSON object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'rules') throw new KbsError('ParsePolicyError', `unknown resource policy key '${k}'`);
  if (!Array.isArray(o.rules)) throw new KbsError('ParsePolicyError', 'rules must be a list');
  return {
    rules: o.rules.map((r, i) => {
      const w = `rules[${i}]`;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new KbsError('ParsePolicyError', `${w} must be an object`);
      const x = r as Record<string, unknown>;
      for (const k of Object.keys(x)) if (!['resources', 'tees', 'status', 'measurements', 'images'].includes(k)) throw new KbsError('ParsePolicyError', `${w}: unknown key '${k}'`);
      const rule: ResourceRule = { resources: strList(x.resources, `${w}.resources`) };
      for (const g of rule.resources) if (g.split('/').length !== 3) throw new KbsError('ParsePolicyError', `${w}.resources '${g}' must have three segments repo/type/tag`);
      if (x.tees !== undefined) rule.tees = strList(x.tees, `${w}.tees`);
      if (x.status !== undefined) {
        rule.status = strList(x.status, `${w}.status`);
        for (const s of rule.status) if (!['affirming', 'warning', 'contraindicated'].includes(s)) throw new KbsError('ParsePolicyError', `${w}.status '${s}' is not an EAR status`);
      }
      if (x.measurements !== undefined) {
        if (typeof x.measurements !== 'object' || x.measurements === null || Array.isArray(x.measurements)) throw new KbsError('ParsePolicyError', `${w}.measurements must be a map`);
        rule.measurements = Object.fromEntries(Object.entries(x.measurements).map(([k, v]) => [k, strList(v, `${w}.measurements.${k}`)]));
      }
      if (x.images !== undefined) {
        rule.images = strList(x.images, `${w}.images`);
        if (rule.images.length === 0) throw new KbsError('ParsePolicyError', `${w}.images must name at least one digest`);
        for (const d of rule.images) if (!/^sha256:[a-f0-9]{64}$/.test(d)) throw new KbsError('ParsePolicyError', `${w}.images '${d}' is not sha256:<64 hex>`);
      }
      return rule;
    }),
  };
}

function segmentMatch(glob: string, seg: string): boolean {
  if (glob === '*') return true;
  const re = new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
  return re.test(seg);
}

export function pathMatches(glob: string, path: string): boolean {
  const g = glob.split('/');
  const p = path.split('/');
  return g.length === p.length && g.every((x, i) => segmentMatch(x, p[i]));
}

export function decide(policy: ResourcePolicy, path: string, facts: TokenFacts): PolicyDecision {
  const reasons: string[] = [];
  for (const [i, rule] of policy.rules.entries()) {
    if (!rule.resources.some((g) => pathMatches(g, path))) continue;
    if (rule.tees && !(facts.tee && rule.tees.includes(facts.tee))) {
      reasons.push(`rule ${i}: TEE ${facts.tee ?? '(none)'} not in ${rule.tees.join(',')}`);
      continue;
    }
    if (rule.status && !(facts.status && rule.status.includes(facts.status))) {
      reasons.push(`rule ${i}: EAR status ${facts.status ?? '(none)'} not in ${rule.status.join(',')}`);
      continue;
    }
    const bad = Object.entries(rule.measurements ?? {}).find(([k, vs]) => !vs.some((v) => v.toLowerCase() === facts.measurements[k]?.toLowerCase()));
    if (bad) {
      reasons.push(`rule ${i}: measurement ${bad[0]} ${facts.measurements[bad[0]] ?? '(absent)'} not accepted`);
      continue;
    }
    if (rule.images) {
      const have = facts.imageDigests ?? [];
      const unlisted = have.find((d) => !rule.images!.includes(d));
      if (have.length === 0 || unlisted) {
        reasons.push(`rule ${i}: ${have.length === 0 ? 'the workload attested no image digests' : `image ${unlisted} is not one of the rule's images`}`);
        continue;
      }
    }
    return { allow: true, rule: i, reason: `allowed by rule ${i}` };
  }
  return { allow: false, reason: reasons.length ? reasons.join('; ') : `no rule covers ${path} (default deny)` };
}
