/** Keeps a Node's discovery labels in step with the host: GET the node, merge-patch only what differs. */
import type { KubeRest } from '../../k8s/kube-rest.js';
import { discoverTee, type HostPaths, type TeeFacts } from './discover.js';
import { labelPatch, runtimeLabels, teeLabels } from './labels.js';
import { containerdConfigHandlers } from './containerd-config.js';

export interface LabelerOptions {
  host: HostPaths;
  nodeName: string;
  /** Host containerd config (e.g. /host/etc/containerd/config.toml, imports followed). */
  containerdConfig?: string;
  /** CRI socket asked for its runtime handlers (Status) when no containerd config is given. */
  criEndpoint?: string;
}

export interface LabelResult {
  facts: TeeFacts;
  labels: Record<string, string>;
  /** Runtime handlers found (undefined: runtime labels are not managed this round). */
  handlers?: string[];
  /** Why the runtime handlers could not be read (runtime labels then stay as they are; TEE labels still apply). */
  runtimeError?: string;
  /** The merge patch sent, or undefined when the node already matched. */
  patch?: { metadata: { labels: Record<string, string | null> } };
}

/** Runtime handlers from the configured source; throws when it cannot be read (fail closed: never "no runtimes"). */
async function runtimeHandlers(opts: LabelerOptions): Promise<string[] | undefined> {
  if (opts.containerdConfig) return containerdConfigHandlers(opts.containerdConfig);
  if (!opts.criEndpoint) return undefined;
  const { CriClient } = await import('../stats/cri-client.js');
  const { criRuntimeHandlers } = await import('./cri-handlers.js');
  const cri = new CriClient(opts.criEndpoint, { timeoutMs: 5000 });
  try {
    return await criRuntimeHandlers(cri);
  } catch (e) {
    throw new Error(`runtime handlers from CRI ${opts.criEndpoint}: ${(e as Error).message}`);
  } finally {
    cri.close();
  }
}

/**
 * Fail closed for runtime labels: a config that cannot be read or parsed is never "no runtimes" (which would strip
 * every runtime label); the runtime labels are then left alone this round while the TEE labels still reconcile.
 */
export async function wantedLabels(opts: LabelerOptions): Promise<{ facts: TeeFacts; labels: Record<string, string>; handlers?: string[]; skipped?: string[]; runtimeError?: string }> {
  const facts = await discoverTee(opts.host);
  const labels = teeLabels(facts);
  let handlers: string[] | undefined;
  try {
    handlers = await runtimeHandlers(opts);
  } catch (e) {
    return { facts, labels, runtimeError: (e as Error).message };
  }
  if (!handlers) return { facts, labels };
  const r = runtimeLabels(handlers);
  return { facts, labels: { ...labels, ...r.labels }, handlers, ...(r.skipped.length ? { skipped: r.skipped } : {}) };
}

export async function reconcileNodeLabels(rest: KubeRest, opts: LabelerOptions): Promise<LabelResult> {
  const { facts, labels, handlers, runtimeError } = await wantedLabels(opts);
  const path = `/api/v1/nodes/${encodeURIComponent(opts.nodeName)}`;
  const node = await rest.request<{ metadata?: { labels?: Record<string, string> } }>('GET', path);
  const patch = labelPatch(node.metadata?.labels, labels, handlers !== undefined);
  if (patch) await rest.request('PATCH', path, patch, 'application/merge-patch+json');
  return { facts, labels, handlers, patch, ...(runtimeError ? { runtimeError } : {}) };
}
