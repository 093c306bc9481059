import { assertJsonDepth, NestingTooDeepError } from '../tee/common/nesting.js';
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
 *
 * Two rules no policy can override (checked before any rule): a `contraindicated` token (or one with no EAR status)
 * gets nothing, and the dev-only `sample` TEE is released to only by a rule that names it in `tees` — Trustee's
 * default resource policy refuses the sample TEE the same way.
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

/** `--allow-all`: any token that is not contraindicated and not the sample TEE (the implicit rules above). */
export const ALLOW_ALL: ResourcePolicy = { rules: [{ resources: ['*/*/*'], status: ['affirming', 'warning'] }] };
export const DENY_ALL: ResourcePolicy = { rules: [] };
export const AFFIRMING: ResourcePolicy = { rules: [{ resources: ['*/*/*'], status: ['affirming'] }] };

const strList = (v: unknown, where: string): string[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new KbsError('ParsePolicyError', `${where} must be a list of strings`);
  return v;
};

export function parseResourcePolicy(text: string): ResourcePolicy {
  let doc: unknown;
  try {
    assertJsonDepth(text, 'the resource policy');
    doc = JSON.parse(text);
  } catch (e) {
    if (e instanceof NestingTooDeepError) throw new KbsError('ParsePolicyError', e.message);
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
        for (const s of rule.status) {
          if (s === 'contraindicated') throw new KbsError('ParsePolicyError', `${w}.status: contraindicated tokens are never released, whatever the policy says`);
          if (!['affirming', 'warning'].includes(s)) throw new KbsError('ParsePolicyError', `${w}.status '${s}' is not an EAR status (affirming, warning)`);
        }
      }
      if (x.measurements !== undefined) {
        if (typeof x.measurements !== 'object' || x.measurements === null || Array.isArray(x.measurements)) throw new KbsError('ParsePolicyError', `${w}.measurements must be a map`);
        // No key that names an Object.prototype member: `__proto__`, `constructor` or `toString` were accepted
        // and then made every fetch throw (500) when looked up on a plain object.
        const m: Record<string, string[]> = {};
        for (const [k, v] of Object.entries(x.measurements)) {
          if (k in Object.prototype) throw new KbsError('ParsePolicyError', `${w}.measurements: '${k}' is not allowed as a measurement name`);
          m[k] = strList(v, `${w}.measurements.${k}`);
        }
        rule.measurements = m;
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

/**
 * `*`-only glob against one segment in linear time, no backtracking: the literal pieces between stars must occur
 * in order; the first is anchored at the start, the last at the end, and each middle piece takes its leftmost
 * occurrence (taking the leftmost never loses a match). A RegExp of `[^/]*` runs backtracked exponentially:
 * `*-*-*-*-*-*-*-*.key` against a 61-character segment took 11.5 s and stalled every other request.
 * `steps` (optional) counts character comparisons, so tests can check the bound without timing anything.
 */
export function globMatch(glob: string, text: string, steps?: { n: number }): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) {
    if (steps) steps.n += Math.min(glob.length, text.length);
    return glob === text;
  }
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (first.length + last.length > text.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  if (steps) steps.n += first.length + last.length;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const piece = parts[i];
    if (piece === '') continue;
    const found = text.indexOf(piece, at);
    if (steps) steps.n += (found === -1 ? end : found) - at + piece.length;
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

export function pathMatches(glob: string, path: string, steps?: { n: number }): boolean {
  const g = glob.split('/');
  const p = path.split('/');
  return g.length === p.length && g.every((x, i) => globMatch(x, p[i], steps));
}

const RELEASABLE = ['affirming', 'warning'];

/** The rules no resource policy overrides; undefined when the token may be judged by the policy. */
export function alwaysDenied(facts: TokenFacts): string | undefined {
  if (facts.status === 'contraindicated') return 'the attestation token is contraindicated: nothing is released to it, whatever the resource policy says';
  if (!facts.status || !RELEASABLE.includes(facts.status)) return `the attestation token has no releasable EAR status (${facts.status ?? 'none'})`;
  return undefined;
}

export function decide(policy: ResourcePolicy, path: string, facts: TokenFacts): PolicyDecision {
  const never = alwaysDenied(facts);
  if (never) return { allow: false, reason: never };
  const reasons: string[] = [];
  for (const [i, rule] of policy.rules.entries()) {
    if (!rule.resources.some((g) => pathMatches(g, path))) continue;
    if (facts.tee === 'sample' && !rule.tees?.includes('sample')) {
      reasons.push(`rule ${i}: the dev-only sample TEE is released to only by a rule that lists 'sample' in tees`);
      continue;
    }
    if (rule.tees && !(facts.tee && rule.tees.includes(facts.tee))) {
      reasons.push(`rule ${i}: TEE ${facts.tee ?? '(none)'} not in ${rule.tees.join(',')}`);
      continue;
    }
    if (rule.status && !(facts.status && rule.status.includes(facts.status))) {
      reasons.push(`rule ${i}: EAR status ${facts.status ?? '(none)'} not in ${rule.status.join(',')}`);
      continue;
    }
    // Own properties only: a token's measurements map is attacker-shaped JSON.
    const have = (k: string): string | undefined => {
      const v = Object.hasOwn(facts.measurements, k) ? facts.measurements[k] : undefined;
      return typeof v === 'string' ? v : undefined;
    };
    const bad = Object.entries(rule.measurements ?? {}).find(([k, vs]) => !vs.some((v) => v.toLowerCase() === have(k)?.toLowerCase()));
    if (bad) {
      reasons.push(`rule ${i}: measurement ${bad[0]} ${have(bad[0]) ?? '(absent)'} not accepted`);
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
