import type { Descriptor, Fetched } from './oci.js';

/** A repository somewhere: registry host + path. */
export interface Repo {
  registry: string;
  path: string;
}

/**
 * Where manifests and blobs come from: a registry over the distribution API (registry.ts) or a local OCI image
 * layout (layout.ts). Every implementation checks each fetched byte against its digest and bounds every read.
 */
export interface ImageSource {
  /** Manifest or index by tag or digest; null when it does not exist (404 / not in the layout). */
  manifest(repo: Repo, reference: string): Promise<Fetched | null>;
  /** Blob by digest, at most maxBytes. */
  blob(repo: Repo, digest: string, maxBytes: number): Promise<Buffer>;
  /** OCI 1.1 referrers of a digest; null when the source has no referrers API (the caller falls back to the tag schema). */
  referrers(repo: Repo, digest: string): Promise<Descriptor[] | null>;
}
