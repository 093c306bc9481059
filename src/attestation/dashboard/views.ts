/**
 * What the dashboard's read API returns, computed from the audit log and the service's status: pure functions of
 * their inputs. Records are sanitized here, on the way out: an allow-list of detail fields, and KBS session ids
 * (bearer cookies while the session lives) reduced to a fingerprint. Resource values and tokens are never read.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord } from '../../store/types.js';
import type { UiAuditRecord } from './wire.js';

export type { UiAuditRecord };
import type { ClusterRead, TrustCounts } from '../../k8s/cluster-view.js';


const DETAIL_KEYS = [
  'evidenceDigest', 'policy', 'failures', 'tcbStatus', 'advisories', 'staleCollateral', 'status', 'rule', 'reason', 'tokenId',
  'version', 'bytes', 'via', 'type', 'detail',
  // node-trust transitions (POST /v1/node-trust/audit)
  'transition', 'from', 'to', 'message', 'effect', 'decidedAt',
] as const;

/** A KBS session id is a bearer cookie while the session lives: shown as a fingerprint only. */
export function redactActor(actor: string): string {
  return actor.startsWith('session:') ? `session:${createHash('sha256').update(actor.slice(8)).digest('hex').slice(0, 8)}` : actor;
}

export function sanitizeRecord(r: AuditRecord): UiAuditRecord {
  const details: Record<string, unknown> = {};
  for (const k of DETAIL_KEYS) if (r.details && r.details[k] !== undefined) details[k] = r.details[k];
  return { id: r.id, at: new Date(r.at).toISOString(), actor: redactActor(r.actor), action: r.action, target: r.target, result: r.result, details };
}

/** Intel security advisories and AMD security bulletins, linked to the vendor's page. */
export function advisoryUrl(id: string): string | null {
  const intel = /^INTEL-SA-(\d{5})$/i.exec(id);
  if (intel) return `https://www.intel.com/content/www/us/en/security-center/advisory/intel-sa-${intel[1]}.html`;
  const amd = /^AMD-SB-(\d{4,5})$/i.exec(id);
  if (amd) return `https://www.amd.com/en/resources/product-security/bulletin/amd-sb-${amd[1]}.html`;
  return null;
}

export const ATTEST_ACTIONS = new Set(['attest', 'kbs.attest']);
export const RESULTS = ['affirming', 'warning', 'contraindicated', 'rejected'] as const;

export interface CollateralRow {
  key: string;
  source: string;
  fetchedAt: string;
  nextUpdate: string | null;
  ageSeconds: number;
  stale: string | null;
}

export interface Overview {
  window: { from: string; to: string; bucketMs: number; buckets: number; scanned: number; truncated: boolean };
  /** series[i] counts the attestations of bucket i by result; byTee[tee][result] counts the whole window. */
  series: { start: string; counts: Record<string, number> }[];
  byTee: Record<string, Record<string, number>>;
  tcb: { statuses: Record<string, number>; advisories: { id: string; url: string | null; count: number; lastSeen: string }[] };
  kbs: { released: number; refused: number; recent: UiAuditRecord[] };
  collateral: CollateralRow[];
  nodes: NodesSummary;
  lastId: number;
}

/** The overview's node panel: the trust counts when a cluster is configured and readable, else what would feed it. */
export type NodesSummary = ({ available: true; at: string } & TrustCounts) | { available: false; note: string };

export function nodesSummary(c: ClusterRead | undefined): NodesSummary {
  if (!c) return { available: false, note: NODES_NOTE };
  if (!c.available) return { available: false, note: c.error };
  return { available: true, at: c.at, ...c.counts };
}

/** `records` newest first, all at or after `from` (the caller stops scanning there). */
export function overview(records: AuditRecord[], o: { now: number; windowMs: number; buckets: number; truncated: boolean; collateral: CollateralRow[]; lastId: number; nodes?: NodesSummary }): Overview {
  const from = o.now - o.windowMs;
  const bucketMs = o.windowMs / o.buckets;
  const series = Array.from({ length: o.buckets }, (_, i) => ({ start: new Date(from + i * bucketMs).toISOString(), counts: Object.fromEntries(RESULTS.map((r) => [r, 0])) as Record<string, number> }));
  const byTee: Record<string, Record<string, number>> = {};
  const statuses: Record<string, number> = {};
  const adv = new Map<string, { count: number; lastSeen: number }>();
  let released = 0;
  let refused = 0;
  const recent: UiAuditRecord[] = [];
  for (const r of records) {
    if (r.at < from || r.at > o.now) continue;
    if (ATTEST_ACTIONS.has(r.action)) {
      const result = (RESULTS as readonly string[]).includes(r.result) ? r.result : 'rejected';
      const b = Math.min(o.buckets - 1, Math.floor((r.at - from) / bucketMs));
      series[b].counts[result]++;
      const t = (byTee[r.target] ??= Object.fromEntries(RESULTS.map((x) => [x, 0])));
      t[result]++;
      const tcb = r.details?.tcbStatus;
      if (typeof tcb === 'string') statuses[tcb] = (statuses[tcb] ?? 0) + 1;
      for (const a of Array.isArray(r.details?.advisories) ? (r.details!.advisories as unknown[]) : []) {
        if (typeof a !== 'string') continue;
        const e = adv.get(a) ?? { count: 0, lastSeen: 0 };
        e.count++;
        e.lastSeen = Math.max(e.lastSeen, r.at);
        adv.set(a, e);
      }
    } else if (r.action === 'resource.get') {
      if (r.result === 'released') released++;
      else refused++;
      if (recent.length < 8) recent.push(sanitizeRecord(r));
    }
  }
  return {
    window: { from: new Date(from).toISOString(), to: new Date(o.now).toISOString(), bucketMs, buckets: o.buckets, scanned: records.length, truncated: o.truncated },
    series, byTee,
    tcb: {
      statuses,
      advisories: [...adv].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0])).map(([id, e]) => ({ id, url: advisoryUrl(id), count: e.count, lastSeen: new Date(e.lastSeen).toISOString() })),
    },
    kbs: { released, refused, recent },
    collateral: o.collateral,
    nodes: o.nodes ?? { available: false, note: NODES_NOTE },
    lastId: o.lastId,
  };
}

export const NODES_NOTE =
  'No node-trust data yet: trusted and untrusted nodes come from the node-trust controller (coffer controller), which verifies each node agent\'s attestation token and sets the coffer.dev/attested label. Start this service with --kubeconfig FILE to read them from the cluster.';

export const CLUSTER_FEEDS = [
  { panel: 'Nodes', shows: 'TEE, trust state and its expiry per node', feed: 'the node-trust controller: the coffer.dev/attested label and its expiry annotation, set after verifying each node agent\'s attestation' },
  { panel: 'Runtime classes', shows: 'RuntimeClasses per node pool', feed: 'coffer controller, which installs RuntimeClasses for each trusted node pool' },
  { panel: 'Pods per isolation level', shows: 'pods by IsolationPolicy level', feed: 'the admission webhook\'s coffer.dev/decision annotation on admitted pods' },
  { panel: 'Edge nodes', shows: 'online / autonomous (serving from cache)', feed: 'coffer edgehub on each edge node, reporting its link state' },
];
