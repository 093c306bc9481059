/**
 * Node trust, the pure part: (node, the policies that select it, the latest verified report, now) → the node's
 * trust label, annotations and taint, the Event and audit record of a transition, and when to look again.
 *
 * Level-triggered and restart-safe: the node's own annotations record the last decision (state, token id,
 * expires-at), written only by the controller (the Node trust guard refuses everyone else), so a restarted
 * controller with no report in memory keeps a trusted node trusted until its recorded expiry and then removes the
 * label — the same outcome the old process would have reached. A transition's Event has a name derived from the
 * node, the new state and what caused it; it is created before the Node patch, so a crash between the two
 * re-creates the same name (409, not a duplicate) and a crash before both re-derives it (not lost).
 */
import { createHash } from 'node:crypto';
import type { NodeTrustPolicySpec } from '../crds/types.js';
import { ATTESTED_LABEL, TRUST_ANNOTATION_PREFIX, UNTRUSTED_TAINT } from '../node-trust-keys.js';
import type { NodeVerdict } from './node-trust-appraise.js';
import type { NodeReport } from './node-trust-token.js';

type Obj = Record<string, any>;

export { ATTESTED_LABEL, UNTRUSTED_TAINT } from '../node-trust-keys.js';
/** Annotations under this prefix belong to the node-trust controller (the Node guard protects the prefix). */
export const TRUST_PREFIX = TRUST_ANNOTATION_PREFIX;
export const ANN = {
  state: `${TRUST_PREFIX}state`,
  reason: `${TRUST_PREFIX}reason`,
  tee: `${TRUST_PREFIX}tee`,
  tcbStatus: `${TRUST_PREFIX}tcb-status`,
  advisories: `${TRUST_PREFIX}advisories`,
  attestedAt: `${TRUST_PREFIX}attested-at`,
  expiresAt: `${TRUST_PREFIX}expires-at`,
  tokenId: `${TRUST_PREFIX}token-id`,
  since: `${TRUST_PREFIX}since`,
} as const;

export type TrustState = 'trusted' | 'untrusted';

export interface LatestReport {
  report: NodeReport;
  verdict: NodeVerdict;
}

export interface NodeTrustInput {
  node: Obj;
  /** Specs of the NodeTrustPolicies whose nodeSelector selects this node. */
  policies: readonly NodeTrustPolicySpec[];
  /** The newest verified report delivered for this node, if this process has one. */
  latest?: LatestReport;
  now: number;
}

export interface TransitionRecord {
  /** Stable id of this transition (also the Event's name suffix): replays of one transition share it. */
  id: string;
  node: string;
  from: TrustState | 'unknown';
  to: TrustState | 'unmanaged';
  reason: string;
  message: string;
  tokenId?: string;
  effect?: 'NoSchedule' | 'NoExecute';
}

export interface NodeTrustPlan {
  /** JSON merge patch for the Node (carries the observed resourceVersion), or undefined when nothing changes. */
  patch?: Obj;
  transition?: TransitionRecord;
  /** Reconcile again after this long (token expiry, end of a grace period). */
  requeueAfterMs?: number;
  state: TrustState | 'pending' | 'unmanaged';
}

const iso = (ms: number) => new Date(ms).toISOString();
const parseTime = (s: unknown): number | undefined => {
  if (typeof s !== 'string') return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
};

function strictest(policies: readonly NodeTrustPolicySpec[]): { effect: 'NoSchedule' | 'NoExecute'; graceMs: number } {
  return {
    effect: policies.some((p) => p.effect === 'NoExecute') ? 'NoExecute' : 'NoSchedule',
    graceMs: Math.min(...policies.map((p) => p.gracePeriodSeconds ?? 0)) * 1000,
  };
}

/**
 * A transition is named by where it starts (the recorded state and when it began: `since`, written with the last
 * transition) and what it goes to (state, cause) — not by the token that triggered it: after a crash the next
 * token of the same failure must derive the same name, or the replay would be a second Event.
 */
function transitionId(node: Obj, to: string, basis: string): string {
  const ann: Record<string, string> = node.metadata?.annotations ?? {};
  return createHash('sha256').update(`${node.metadata?.uid ?? node.metadata?.name}\n${ann[ANN.state] ?? ''}\n${ann[ANN.since] ?? ''}\n${to}\n${basis}`).digest('hex').slice(0, 16);
}

interface Decision {
  state: TrustState;
  reason: string; // CamelCase (Event reason)
  message: string;
  basis: string; // what caused it: token id, expiry, ...
  annotations: Record<string, string | null>;
  requeueAt?: number;
}

/** Taint list with ours set to `effect` (or removed when undefined); other taints kept in order. */
function withTaint(taints: Obj[] | undefined, effect: string | undefined, now: number): Obj[] | undefined {
  const list = taints ?? [];
  const ours = list.filter((t) => t.key === UNTRUSTED_TAINT);
  const others = list.filter((t) => t.key !== UNTRUSTED_TAINT);
  if (effect === undefined) return ours.length ? others : undefined;
  if (ours.length === 1 && ours[0].effect === effect && (ours[0].value ?? '') === 'true') return undefined;
  return [...others, { key: UNTRUSTED_TAINT, value: 'true', effect, ...(effect === 'NoExecute' ? { timeAdded: iso(now) } : {}) }];
}

function decide(input: NodeTrustInput, graceMs: number): Decision | 'pending' {
  const { node, latest, now } = input;
  const ann: Record<string, string> = node.metadata?.annotations ?? {};
  const recordedAttestedAt = parseTime(ann[ANN.attestedAt]);
  const recordedExpiry = parseTime(ann[ANN.expiresAt]);
  // The in-memory report counts unless the node records a newer one (another replica, an earlier leader).
  const report = latest && (recordedAttestedAt === undefined || latest.report.issuedAt >= recordedAttestedAt) ? latest : undefined;
  if (report) {
    const r = report.report;
    const fromReport = {
      [ANN.tee]: report.verdict.tee,
      [ANN.tcbStatus]: report.verdict.tcbStatus,
      [ANN.advisories]: report.verdict.advisories.join(',') || null,
      [ANN.attestedAt]: iso(r.issuedAt),
      [ANN.expiresAt]: iso(r.expiresAt),
      [ANN.tokenId]: r.tokenId,
    };
    if (!report.verdict.trusted) {
      return { state: 'untrusted', reason: 'AttestationRejected', message: report.verdict.reasons.join('; '), basis: `token:${r.tokenId}`, annotations: fromReport };
    }
    if (r.expiresAt + graceMs <= now) {
      return { state: 'untrusted', reason: 'AttestationExpired', message: `the last token (${r.tokenId}) expired at ${iso(r.expiresAt)}`, basis: `expired:${r.tokenId}`, annotations: fromReport };
    }
    // Still trusted with the same facts: the recorded token is refreshed only once half its lifetime is gone, so a
    // node is patched every TTL/2 instead of every interval. The record only ever understates trust (an older
    // expiry), and a restarted controller gets the next report within an interval.
    const ttl = r.expiresAt - r.issuedAt;
    const sameFacts = ann[ANN.state] === 'trusted' && ann[ANN.tee] === fromReport[ANN.tee] && ann[ANN.tcbStatus] === fromReport[ANN.tcbStatus] && (ann[ANN.advisories] ?? null) === fromReport[ANN.advisories];
    const fresh = recordedExpiry !== undefined && recordedExpiry - now > ttl / 2;
    return { state: 'trusted', reason: 'Attested', message: `attested (${report.verdict.tee}, TCB ${report.verdict.tcbStatus}) until ${iso(r.expiresAt)}`, basis: `token:${r.tokenId}`, annotations: sameFacts && fresh ? {} : fromReport, requeueAt: r.expiresAt + graceMs };
  }
  const recordedState = ann[ANN.state];
  if (recordedState === 'trusted' && recordedExpiry !== undefined) {
    if (recordedExpiry + graceMs > now) {
      return { state: 'trusted', reason: 'Attested', message: ann[ANN.reason] ?? '', basis: `token:${ann[ANN.tokenId] ?? ''}`, annotations: {}, requeueAt: recordedExpiry + graceMs };
    }
    return { state: 'untrusted', reason: 'AttestationExpired', message: `the last token (${ann[ANN.tokenId] ?? 'unknown'}) expired at ${iso(recordedExpiry)}`, basis: `expired:${ann[ANN.tokenId] ?? ''}`, annotations: {} };
  }
  if (recordedState === 'untrusted') {
    // Keep the recorded decision (and its reason) until a new verified report arrives.
    return { state: 'untrusted', reason: 'Unchanged', message: ann[ANN.reason] ?? '', basis: 'recorded', annotations: {} };
  }
  // Never attested: a new node gets the grace period to attest before it is tainted.
  const created = parseTime(node.metadata?.creationTimestamp) ?? now;
  if (created + graceMs > now) return 'pending';
  return { state: 'untrusted', reason: 'NotAttested', message: 'no attestation token has been received for this node', basis: 'never', annotations: {} };
}

export function reconcileNodeTrust(input: NodeTrustInput): NodeTrustPlan {
  const { node, policies, now } = input;
  const name: string = node.metadata.name;
  const labels: Record<string, string> = node.metadata?.labels ?? {};
  const ann: Record<string, string> = node.metadata?.annotations ?? {};
  const rv = node.metadata.resourceVersion;
  const prev = (ann[ANN.state] as TrustState | undefined) ?? 'unknown';

  if (policies.length === 0) {
    // Not governed: no trust label may stay (fail closed), and ours go away.
    const annPatch: Record<string, null> = {};
    for (const k of Object.keys(ann)) if (k.startsWith(TRUST_PREFIX)) annPatch[k] = null;
    const taints = withTaint(node.spec?.taints, undefined, now);
    const hasLabel = labels[ATTESTED_LABEL] !== undefined;
    if (!hasLabel && !taints && Object.keys(annPatch).length === 0) return { state: 'unmanaged' };
    return {
      state: 'unmanaged',
      patch: { metadata: { resourceVersion: rv, labels: hasLabel ? { [ATTESTED_LABEL]: null } : undefined, annotations: annPatch }, ...(taints ? { spec: { taints } } : {}) },
      transition: { id: transitionId(node, 'unmanaged', ''), node: name, from: prev, to: 'unmanaged', reason: 'NodeTrustUnmanaged', message: 'no NodeTrustPolicy selects this node: trust label, annotations and taint removed' },
    };
  }

  const { effect, graceMs } = strictest(policies);
  const d = decide(input, graceMs);
  if (d === 'pending') {
    const created = parseTime(node.metadata?.creationTimestamp) ?? now;
    // Pending nodes carry no trust label either way; remove a stray one.
    const patch = labels[ATTESTED_LABEL] !== undefined ? { metadata: { resourceVersion: rv, labels: { [ATTESTED_LABEL]: null } } } : undefined;
    return { state: 'pending', patch, requeueAfterMs: Math.max(0, created + graceMs - now) };
  }

  const trusted = d.state === 'trusted';
  const wantAnn: Record<string, string | null> = { ...d.annotations, [ANN.state]: d.state };
  if (!trusted && d.reason !== 'Unchanged') wantAnn[ANN.reason] = `${d.reason}: ${d.message}`.slice(0, 4096);
  if (trusted) wantAnn[ANN.reason] = null;
  const reasonChanged = !trusted && d.reason !== 'Unchanged' && (ann[ANN.reason] ?? null) !== wantAnn[ANN.reason];
  // `since` moves with every transition (it is part of the next transition's name).
  if (prev !== d.state || reasonChanged) wantAnn[ANN.since] = iso(now);
  const annPatch: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(wantAnn)) if ((ann[k] ?? null) !== v) annPatch[k] = v;
  const labelPatch: Record<string, string | null> = {};
  if (trusted && labels[ATTESTED_LABEL] !== 'true') labelPatch[ATTESTED_LABEL] = 'true';
  if (!trusted && labels[ATTESTED_LABEL] !== undefined) labelPatch[ATTESTED_LABEL] = null;
  const taints = withTaint(node.spec?.taints, trusted ? undefined : effect, now);

  const plan: NodeTrustPlan = { state: d.state };
  if (d.requeueAt !== undefined) plan.requeueAfterMs = Math.max(0, d.requeueAt - now);
  if (Object.keys(annPatch).length || Object.keys(labelPatch).length || taints) {
    plan.patch = {
      metadata: { resourceVersion: rv, ...(Object.keys(labelPatch).length ? { labels: labelPatch } : {}), ...(Object.keys(annPatch).length ? { annotations: annPatch } : {}) },
      ...(taints ? { spec: { taints } } : {}),
    };
  }
  // A transition: the state changes, or an untrusted node's reason does (a different failure is news).
  if (prev !== d.state || reasonChanged || (taints && !trusted)) {
    plan.transition = {
      id: transitionId(node, d.state, `${d.reason}\n${trusted ? '' : d.message}`),
      node: name,
      from: prev,
      to: d.state,
      reason: trusted ? 'NodeTrusted' : d.reason === 'Unchanged' ? 'NodeUntrusted' : d.reason,
      message: d.message || (trusted ? 'attested' : 'untrusted'),
      ...(d.annotations[ANN.tokenId] ? { tokenId: d.annotations[ANN.tokenId] as string } : {}),
      ...(trusted ? {} : { effect }),
    };
  }
  return plan;
}
