import { ImageError } from './errors.js';

/**
 * A container image reference as the kubelet (containerd's docker reference normaliser) reads it:
 * [domain[:port]/]path[:tag][@algo:hex]. No domain → docker.io; a one-segment docker.io path → library/NAME;
 * neither tag nor digest → tag latest. Grammar: github.com/distribution/reference/regexp.go.
 */
export interface ImageRef {
  /** Registry host as written after normalisation (docker.io for Docker Hub). */
  registry: string;
  /** Repository path inside the registry (library/nginx). */
  path: string;
  tag?: string;
  digest?: string;
}

const MAX_REF = 512;
// Path components: lowercase alphanumerics separated by '.', '_', '__' or runs of '-' (bounded, no nesting).
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export function parseImageRef(text: string): ImageRef {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_REF) throw new ImageError('REF_INVALID', `image reference must be 1..${MAX_REF} characters`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageError('REF_INVALID', `image "${text}": digest must be sha256:<64 hex> (other algorithms are not accepted)`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageError('REF_INVALID', `image "${text}": invalid tag "${tag}"`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost' || parts[0] !== parts[0].toLowerCase())) {
    registry = parts.shift()!;
    if (!DOMAIN.test(registry)) throw new ImageError('REF_INVALID', `image "${text}": invalid registry "${registry}"`);
  }
  if (registry === 'index.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const p of parts) if (!COMPONENT.test(p)) throw new ImageError('REF_INVALID', `image "${text}": invalid path component "${p}"`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, path: parts.join('/'), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** registry/path: what repository globs and cosign's docker-reference compare against. */
export function repositoryOf(r: ImageRef): string {
  return `${r.registry}/${r.path}`;
}

export function formatRef(r: ImageRef): string {
  return `${repositoryOf(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** The pinned form the webhook writes: repo@sha256:… (the tag is dropped: the digest is what was verified). */
export function pinnedRef(r: ImageRef, digest: string): string {
  return `${repositoryOf(r)}@${digest}`;
}

/** The host to talk HTTP to (Docker Hub's API host differs from its reference domain). */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}
