/**
 * `coffer status`, the pure part: the cluster's trust posture from its objects (Nodes, Pods, RuntimeClasses) and,
 * when asked, the attestation service's published token keys against a pinned key. Read from the node-trust
 * controller's label and annotations; a trust record past its expiry counts as untrusted even if the label is
 * still there (the controller may be down), so this view never reports more trust than the tokens carry.
 */
import { AUTONOMOUS_SINCE, AUTONOMY_ANNOTATION } from './controllers/autonomy-reconcile.js';
import { createHash } from 'node:crypto';
import { ANN, ATTESTED_LABEL, UNTRUSTED_TAINT } from './controllers/node-trust-reconcile.js';
import type { NodeStatus } from './cluster-types.js';

export type { NodeStatus };

type Obj = Record<string, any>;


export interface IdentityStatus {
  url: string;
  keys: { kid?: string; thumbprint: string }[];
  pinned: string | null;
  verified: boolean;
  detail: string;
}

export interface ClusterStatus {
  at: string;
  nodes: NodeStatus[];
  attestation?: IdentityStatus;
  /** Every node that runs confidential pods is trusted (and the service identity verified, when checked). */
  ok: boolean;
}

/** Pods the webhook placed under a confidential isolation level (its decision annotation says so). */
function isConfidentialPod(pod: Obj): boolean {
  const d = pod.metadata?.annotations?.['coffer.dev/decision'];
  if (typeof d !== 'string') return false;
  try {
    const iso = JSON.parse(d)?.isolation;
    return iso === 'confidential-vm' || iso === 'enclave';
  } catch {
    return false;
  }
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

export function nodeStatuses(nodes: Obj[], pods: Obj[], runtimeClasses: Obj[], now: number): NodeStatus[] {
  return nodes
    .map((n): NodeStatus => {
      const labels: Record<string, string> = n.metadata?.labels ?? {};
      const ann: Record<string, string> = n.metadata?.annotations ?? {};
      const exp = ann[ANN.expiresAt] ? Date.parse(ann[ANN.expiresAt]) : NaN;
      const labelled = labels[ATTESTED_LABEL] === 'true';
      const state = ann[ANN.state];
      let trust: NodeStatus['trust'] = 'unknown';
      if (labelled && state === 'trusted') trust = Number.isFinite(exp) && exp > now ? 'trusted' : 'expired';
      else if (state === 'untrusted' || (!labelled && state === 'trusted')) trust = 'untrusted';
      const taint = (n.spec?.taints ?? []).find((t: Obj) => t.key === UNTRUSTED_TAINT);
      const teeLabels = Object.keys(labels).filter((k) => k.startsWith('coffer.dev/tee.')).map((k) => k.slice('coffer.dev/tee.'.length));
      return {
        name: n.metadata.name,
        tee: ann[ANN.tee] ?? (teeLabels.length ? teeLabels.join(',') : null),
        trust,
        reason: ann[ANN.reason] ?? null,
        tcbStatus: ann[ANN.tcbStatus] ?? null,
        advisories: ann[ANN.advisories] ? ann[ANN.advisories].split(',') : [],
        lastAttestation: ann[ANN.attestedAt] ?? null,
        expiresAt: ann[ANN.expiresAt] ?? null,
        taint: taint ? `${UNTRUSTED_TAINT}:${taint.effect}` : null,
        runtimeClasses: runtimeClasses.filter((rc) => matches(rc.scheduling?.nodeSelector, labels)).map((rc) => rc.metadata.name).sort(),
        // What the autonomy controller records (autonomy-reconcile.ts): the opt-in, and an outage in progress.
        autonomy: ann[AUTONOMY_ANNOTATION] !== 'true' ? 'off' : ann[AUTONOMOUS_SINCE] ? 'autonomous' : 'connected',
        confidentialPods: pods.filter((p) => p.spec?.nodeName === n.metadata.name && isConfidentialPod(p) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members in lexicographic order. */
export function jwkThumbprint(jwk: Obj): string {
  const req: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
  const members = req[jwk.kty];
  if (!members || members.some((m) => typeof jwk[m] !== 'string')) throw new Error(`unsupported or incomplete JWK (kty ${String(jwk.kty)})`);
  const json = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(json).digest('base64url');
}

/**
 * The service's identity: its published token keys must include the pinned key (by thumbprint) — a different
 * key means a different signer; no pin means nothing vouches for it (reported, and not `verified`).
 */
export function identityStatus(url: string, jwks: Obj, pinned: Obj | undefined): IdentityStatus {
  const keys = (Array.isArray(jwks?.keys) ? jwks.keys : []).flatMap((k: Obj) => {
    try {
      return [{ ...(typeof k.kid === 'string' ? { kid: k.kid } : {}), thumbprint: jwkThumbprint(k) }];
    } catch {
      return [];
    }
  });
  if (!pinned) return { url, keys, pinned: null, verified: false, detail: 'no pinned key (--pin-jwk): the service identity is not verified' };
  const pin = jwkThumbprint(pinned);
  const verified = keys.some((k: { thumbprint: string }) => k.thumbprint === pin);
  return { url, keys, pinned: pin, verified, detail: verified ? 'the pinned key is among the published token keys' : 'the pinned key is NOT among the published token keys' };
}

export function clusterStatus(nodes: NodeStatus[], identity: IdentityStatus | undefined, now: number): ClusterStatus {
  const ok = nodes.every((n) => n.confidentialPods === 0 || n.trust === 'trusted') && (identity === undefined || identity.verified);
  return { at: new Date(now).toISOString(), nodes, ...(identity ? { attestation: identity } : {}), ok };
}
