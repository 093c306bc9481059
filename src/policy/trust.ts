/**
 * Trust failures vs policy warnings. A verifier may only *warn* about facts a policy can weigh (TCB status,
 * provisional firmware, advisories, collateral close to expiry or stale but still signed). A warning that says a
 * key, chain or piece of collateral could not be checked — or that the caller supplied the key it is trusted by —
 * means nothing vouches for the evidence: appraisal turns it into a `contraindicated` failure whatever the policy.
 *
 * Warnings are `CODE: text` (the convention every verifier follows); a marker is recognised by its code.
 */
export const TRUST_MARKER_CODES: ReadonlySet<string> = new Set(['AK_PINNED_BY_CALLER']);

/** Code shapes that announce an unverified trust decision, for markers added later by a verifier. */
const TRUST_MARKER_SHAPE = /^[A-Z0-9_]+_(UNVERIFIED|UNTRUSTED|NOT_CHECKED|NOT_VERIFIED|PINNED_BY_CALLER)$/;

export interface TrustSplit {
  /** Warnings that say something was not verified: each one is a contraindicated failure. */
  trustFailures: { code: string; message: string }[];
  /** Facts a policy may accept. */
  warnings: string[];
}

export interface TrustOptions {
  /**
   * The caller itself pins the keys it supplied (`coffer verify --ak FILE` on the operator's own machine): then
   * AK_PINNED_BY_CALLER is the caller's own decision, not an attacker's. Never set in a service.
   */
  callerPinsKeys?: boolean;
  /** The appraiser runs in dev mode (`coffer up --dev`): reference values marked `dev` may be used. */
  devMode?: boolean;
}

export function warningCode(w: string): string | undefined {
  const m = /^([A-Z][A-Z0-9_]+):/.exec(w);
  return m ? m[1] : undefined;
}

export function isTrustMarker(w: string, o: TrustOptions = {}): boolean {
  const code = warningCode(w);
  if (!code) return false;
  if (code === 'AK_PINNED_BY_CALLER' && o.callerPinsKeys) return false;
  return TRUST_MARKER_CODES.has(code) || TRUST_MARKER_SHAPE.test(code);
}

export function splitTrust(warnings: readonly string[], o: TrustOptions = {}): TrustSplit {
  const out: TrustSplit = { trustFailures: [], warnings: [] };
  for (const w of warnings) {
    if (isTrustMarker(w, o)) out.trustFailures.push({ code: warningCode(w)!, message: w });
    else out.warnings.push(w);
  }
  return out;
}
