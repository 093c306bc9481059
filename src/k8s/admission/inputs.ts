import { K8sInputError } from '../errors.js';
import { builtinRuntimeProfiles } from '../crds/builtin-profiles.js';
import { parseIsolationPolicies, parseRuntimeProfiles, parseYamlDocuments } from '../crds/load.js';
import type { IsolationPolicy, RuntimeProfile } from '../crds/types.js';
import type { Pod } from './pod.js';
import { checkPodShape } from './review.js';

/** Text of the files the user named, keyed by their name (for messages). Reading them is the caller's job. */
export interface NamedText {
  name: string;
  text: string;
}

export function loadPolicies(files: NamedText[]): IsolationPolicy[] {
  const all = files.flatMap((f) => parseIsolationPolicies(f.text, f.name));
  const seen = new Set<string>();
  for (const p of all) {
    if (seen.has(p.metadata.name)) throw new K8sInputError(`IsolationPolicy "${p.metadata.name}" is defined twice`);
    seen.add(p.metadata.name);
  }
  return all;
}

/** Built-in profiles, overridden by name by the user's. */
export function loadProfiles(files: NamedText[]): Map<string, RuntimeProfile> {
  const map = new Map(builtinRuntimeProfiles().map((p) => [p.metadata.name, p]));
  for (const f of files) for (const p of parseRuntimeProfiles(f.text, f.name)) map.set(p.metadata.name, p);
  return map;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parsePod(text: string, what: string): Pod {
  const docs = parseYamlDocuments(text, what);
  if (docs.length !== 1) throw new K8sInputError(`${what}: expected exactly one Pod document, found ${docs.length}`);
  const d = docs[0];
  if (!isObj(d) || d.kind !== 'Pod' || (d.apiVersion !== undefined && d.apiVersion !== 'v1')) throw new K8sInputError(`${what}: not a v1 Pod`);
  if (!isObj(d.spec) || !Array.isArray(d.spec.containers) || d.spec.containers.length === 0) throw new K8sInputError(`${what}: Pod needs spec.containers`);
  if (d.metadata !== undefined && !isObj(d.metadata)) throw new K8sInputError(`${what}: metadata must be an object`);
  checkPodShape(d, what);
  return d as Pod;
}

/**
 * Namespace labels as selectors see them: the manifest's labels plus kubernetes.io/metadata.name, which the API
 * server sets on every namespace (NamespaceDefaultLabelName, GA in 1.22).
 */
export function namespaceLabels(ns: { metadata?: { name?: string; labels?: Record<string, string> } } | undefined, fallbackName: string): Record<string, string> {
  const name = ns?.metadata?.name ?? fallbackName;
  return { ...(ns?.metadata?.labels ?? {}), 'kubernetes.io/metadata.name': name };
}

export function parseNamespaces(text: string, what: string): { metadata: { name: string; labels?: Record<string, string> } }[] {
  return parseYamlDocuments(text, what).map((d, i) => {
    if (!isObj(d) || d.kind !== 'Namespace' || !isObj(d.metadata) || typeof d.metadata.name !== 'string') {
      throw new K8sInputError(`${what} document ${i + 1}: not a Namespace with metadata.name`);
    }
    const labels = d.metadata.labels;
    if (labels !== undefined && (!isObj(labels) || Object.values(labels).some((v) => typeof v !== 'string'))) {
      throw new K8sInputError(`${what} document ${i + 1}: metadata.labels must map strings to strings`);
    }
    return d as { metadata: { name: string; labels?: Record<string, string> } };
  });
}
