/**
 * Reads the objects the trust posture is computed from (Nodes, Pods, RuntimeClasses), read-only, for `coffer status`
 * and the dashboard's Cluster page. Every list is one bounded page (`limit`): a cluster larger than the cap is
 * reported as truncated, never paged through, so one page load costs at most three API calls.
 */
import type { KubeRest } from './kube-rest.js';

type Obj = Record<string, any>;

export interface ClusterObjects {
  nodes: Obj[];
  pods: Obj[];
  runtimeClasses: Obj[];
  /** A list had more items than its cap (the server returned a continue token). */
  truncated: { nodes: boolean; pods: boolean; runtimeClasses: boolean };
}

export interface ClusterReadLimits {
  maxNodes?: number;
  maxPods?: number;
  maxRuntimeClasses?: number;
}

export const DEFAULT_READ_LIMITS = { maxNodes: 1000, maxPods: 5000, maxRuntimeClasses: 200 } as const;

async function list(rest: KubeRest, path: string, limit: number): Promise<{ items: Obj[]; truncated: boolean }> {
  const doc = await rest.request<Obj>('GET', `${path}?limit=${limit}`);
  const items = Array.isArray(doc?.items) ? doc.items : [];
  // A server that ignores `limit` is still held to it.
  return { items: items.slice(0, limit), truncated: Boolean(doc?.metadata?.continue) || items.length > limit };
}

export async function readClusterObjects(rest: KubeRest, limits: ClusterReadLimits = {}): Promise<ClusterObjects> {
  const l = { ...DEFAULT_READ_LIMITS, ...limits };
  const [nodes, pods, rcs] = await Promise.all([
    list(rest, '/api/v1/nodes', l.maxNodes),
    list(rest, '/api/v1/pods', l.maxPods),
    // RuntimeClasses are optional (node.k8s.io may be absent or not readable): none then.
    list(rest, '/apis/node.k8s.io/v1/runtimeclasses', l.maxRuntimeClasses).catch(() => ({ items: [], truncated: false })),
  ]);
  return { nodes: nodes.items, pods: pods.items, runtimeClasses: rcs.items, truncated: { nodes: nodes.truncated, pods: pods.truncated, runtimeClasses: rcs.truncated } };
}
