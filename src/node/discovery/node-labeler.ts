/** Keeps a Node's discovery labels in step with the host: GET the node, merge-patch only what differs. */
import { readFile } from 'node:fs/promises';
import type { KubeRest } from '../../k8s/kube-rest.js';
import { discoverTee, type HostPaths, type TeeFacts } from './discover.js';
import { containerdRuntimeHandlers, labelPatch, runtimeLabels, teeLabels } from './labels.js';

export interface LabelerOptions {
  host: HostPaths;
  nodeName: string;
  /** Host containerd config (e.g. /host/etc/containerd/config.toml); without it runtime labels are left alone. */
  containerdConfig?: string;
}

export interface LabelResult {
  facts: TeeFacts;
  labels: Record<string, string>;
  /** The merge patch sent, or undefined when the node already matched. */
  patch?: { metadata: { labels: Record<string, string | null> } };
}

export async function wantedLabels(opts: LabelerOptions): Promise<{ facts: TeeFacts; labels: Record<string, string> }> {
  const facts = await discoverTee(opts.host);
  const labels = teeLabels(facts);
  if (opts.containerdConfig) {
    let text: string;
    try {
      text = await readFile(opts.containerdConfig, 'utf8');
    } catch (e) {
      // Fail closed: an unreadable config must not be read as "no runtimes" and strip every runtime label.
      throw new Error(`containerd config ${opts.containerdConfig} could not be read: ${(e as Error).message}`);
    }
    Object.assign(labels, runtimeLabels(containerdRuntimeHandlers(text), facts));
  }
  return { facts, labels };
}

export async function reconcileNodeLabels(rest: KubeRest, opts: LabelerOptions): Promise<LabelResult> {
  const { facts, labels } = await wantedLabels(opts);
  const path = `/api/v1/nodes/${encodeURIComponent(opts.nodeName)}`;
  const node = await rest.request<{ metadata?: { labels?: Record<string, string> } }>('GET', path);
  const patch = labelPatch(node.metadata?.labels, labels, opts.containerdConfig !== undefined);
  if (patch) await rest.request('PATCH', path, patch, 'application/merge-patch+json');
  return { facts, labels, patch };
}
