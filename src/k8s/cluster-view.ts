/**
 * The dashboard's Cluster view: `coffer status`'s per-node trust state (cluster-status.ts) plus the fleet totals the
 * Cluster page and the overview show. Read-only, bounded (capped lists, a deadline per API call) and cached for a
 * few seconds with one read in flight at a time, so page loads and live overviews never hammer the API server.
 */
import { nodeStatuses } from './cluster-status.js';
import type { ClusterRead, ClusterUnavailable, ClusterView, NodeStatus, TrustCounts } from './cluster-types.js';

export type { ClusterRead, ClusterUnavailable, ClusterView, TrustCounts };
import { ISOLATION_LEVELS } from './crds/types.js';
import { readClusterObjects, type ClusterObjects, type ClusterReadLimits } from './cluster-read.js';

type Obj = Record<string, any>;


const TRUST_ORDER: Record<NodeStatus['trust'], number> = { untrusted: 0, expired: 1, unknown: 2, trusted: 3 };

function isolationOf(pod: Obj): string {
  const d = pod.metadata?.annotations?.['coffer.dev/decision'];
  if (typeof d !== 'string') return 'unmanaged';
  try {
    const iso = JSON.parse(d)?.isolation;
    // Only known levels are counted by name: an annotation is user-writable text, not a label set to show.
    return typeof iso === 'string' && (ISOLATION_LEVELS as readonly string[]).includes(iso) ? iso : 'other';
  } catch {
    return 'other';
  }
}

export function clusterView(objs: ClusterObjects, o: { now: number; source: string; maxNodesShown: number }): ClusterView {
  const all = nodeStatuses(objs.nodes, objs.pods, objs.runtimeClasses, o.now);
  const counts: TrustCounts = { total: all.length, trusted: 0, untrusted: 0, expired: 0, unknown: 0 };
  for (const n of all) counts[n.trust]++;
  const byIsolation: Record<string, number> = {};
  let total = 0;
  for (const p of objs.pods) {
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
    total++;
    const iso = isolationOf(p);
    byIsolation[iso] = (byIsolation[iso] ?? 0) + 1;
  }
  const edge = all.filter((n) => n.autonomy !== 'off');
  const shown = [...all].sort((a, b) => TRUST_ORDER[a.trust] - TRUST_ORDER[b.trust] || a.name.localeCompare(b.name)).slice(0, o.maxNodesShown);
  return {
    available: true,
    at: new Date(o.now).toISOString(),
    source: o.source,
    counts,
    nodes: shown,
    runtimeClasses: objs.runtimeClasses
      .map((rc) => ({ name: String(rc.metadata?.name ?? ''), handler: String(rc.handler ?? ''), nodes: all.filter((n) => n.runtimeClasses.includes(rc.metadata?.name)).length }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    pods: { total, byIsolation },
    edge: { nodes: edge.length, online: edge.filter((n) => n.autonomy === 'connected').length, autonomous: edge.filter((n) => n.autonomy === 'autonomous').length },
    truncated: { ...objs.truncated, nodesShown: all.length > shown.length },
  };
}

/** What reads the cluster: the KubeRest's `request` is all it needs (read-only GETs). */
export type ClusterReader = () => Promise<ClusterObjects>;

export interface ClusterViewSourceOptions {
  read: ClusterReader;
  source: string;
  clock?: () => number;
  /** How long one read is served to every page (default 5 s). */
  ttlMs?: number;
  maxNodesShown?: number;
}

/** Cached, single-flight: concurrent callers share one read; a failed read is cached too (no retry storm). */
export class ClusterViewSource {
  private cached: { at: number; value: ClusterRead } | undefined;
  private inflight: Promise<ClusterRead> | undefined;
  private readonly clock: () => number;
  private readonly ttlMs: number;

  constructor(private readonly o: ClusterViewSourceOptions) {
    this.clock = o.clock ?? Date.now;
    this.ttlMs = o.ttlMs ?? 5_000;
  }

  get(): Promise<ClusterRead> {
    const now = this.clock();
    if (this.cached && now - this.cached.at < this.ttlMs) return Promise.resolve(this.cached.value);
    this.inflight ??= this.refresh();
    return this.inflight;
  }

  /** Never rejects: a failed read, or objects that do not compute (malformed), become the unavailable view. */
  private async refresh(): Promise<ClusterRead> {
    let value: ClusterRead;
    try {
      value = clusterView(await this.o.read(), { now: this.clock(), source: this.o.source, maxNodesShown: this.o.maxNodesShown ?? 500 });
    } catch (e) {
      value = { available: false, at: new Date(this.clock()).toISOString(), source: this.o.source, error: oneLine(`cannot read the cluster: ${(e as Error)?.message ?? String(e)}`) };
    }
    this.cached = { at: this.clock(), value };
    this.inflight = undefined;
    return value;
  }
}

function oneLine(s: string, max = 300): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The reader over a KubeRest, with the list caps. */
export function restClusterReader(rest: Parameters<typeof readClusterObjects>[0], limits?: ClusterReadLimits): ClusterReader {
  return () => readClusterObjects(rest, limits);
}
