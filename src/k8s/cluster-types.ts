/**
 * The cluster view's wire shapes: what `coffer status --json` and the dashboard's `/v1/dashboard/cluster` return.
 * Types only and no imports, so the browser bundle (src/ui, DOM types, no Node) can use them too.
 */

export interface NodeStatus {
  name: string;
  tee: string | null;
  trust: 'trusted' | 'untrusted' | 'expired' | 'unknown';
  reason: string | null;
  tcbStatus: string | null;
  advisories: string[];
  lastAttestation: string | null;
  expiresAt: string | null;
  taint: string | null;
  runtimeClasses: string[];
  autonomy: 'off' | 'connected' | 'autonomous';
  confidentialPods: number;
}

export interface TrustCounts {
  total: number;
  trusted: number;
  /** Attested and refused, or trusted once and no longer labelled. */
  untrusted: number;
  /** Labelled trusted but past the token's expiry (the controller may be down): not trusted. */
  expired: number;
  /** Never attested by the node-trust controller. */
  unknown: number;
}

export interface ClusterView {
  available: true;
  at: string;
  /** Where the data comes from (the API server URL). */
  source: string;
  counts: TrustCounts;
  /** The first `maxNodesShown` nodes, untrusted ones first. */
  nodes: NodeStatus[];
  runtimeClasses: { name: string; handler: string; nodes: number }[];
  /** Running pods by the isolation level the admission webhook chose (its decision annotation); `unmanaged` = none. */
  pods: { total: number; byIsolation: Record<string, number> };
  edge: { nodes: number; online: number; autonomous: number };
  truncated: { nodes: boolean; pods: boolean; runtimeClasses: boolean; nodesShown: boolean };
}

export interface ClusterUnavailable {
  available: false;
  at: string;
  source: string;
  /** One line: why the cluster could not be read. */
  error: string;
}

export type ClusterRead = ClusterView | ClusterUnavailable;
