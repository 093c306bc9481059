import { ImageError } from './errors.js';
import { DIGEST_RE } from './digest.js';

/** OCI image-spec and Docker schema 2 media types the client accepts (image-spec media-types.md). */
export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  cosignArtifactSig: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  sigstoreBundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  sigstoreBundlePrefix: 'application/vnd.dev.sigstore.bundle',
} as const;

export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

/** A manifest as fetched: its bytes (digest-checked by the source) and the parsed document. */
export interface Fetched {
  digest: string;
  bytes: Buffer;
  doc: ImageManifest | ImageIndex;
}

const MAX_ENTRIES = 1024;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(what: string, msg: string): never {
  throw new ImageError('MANIFEST_INVALID', `${what}: ${msg}`);
}

function annotations(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) bad(what, 'annotations must map strings to strings');
  return v as Record<string, string>;
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  if (!isObj(v)) bad(what, 'descriptor must be an object');
  if (typeof v.mediaType !== 'string') bad(what, 'descriptor mediaType must be a string');
  if (typeof v.digest !== 'string' || !DIGEST_RE.test(v.digest)) bad(what, `descriptor digest ${JSON.stringify(v.digest)} is not sha256:<64 hex>`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) bad(what, 'descriptor size must be a non-negative integer');
  const d: Descriptor = { mediaType: v.mediaType, digest: v.digest, size: v.size };
  const a = annotations(v.annotations, what);
  if (a) d.annotations = a;
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isObj(v.platform) && typeof v.platform.os === 'string' && typeof v.platform.architecture === 'string') {
    d.platform = { os: v.platform.os, architecture: v.platform.architecture, ...(typeof v.platform.variant === 'string' ? { variant: v.platform.variant } : {}) };
  }
  return d;
}

/** Parses a manifest or index; the media type comes from the document, else from the response header. */
export function parseManifest(bytes: Buffer, headerType: string | undefined, what: string): ImageManifest | ImageIndex {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    bad(what, 'manifest is not JSON');
  }
  if (!isObj(v)) bad(what, 'manifest must be a JSON object');
  if (v.schemaVersion !== 2) bad(what, `schemaVersion ${JSON.stringify(v.schemaVersion)} is not supported (only 2)`);
  const mediaType = typeof v.mediaType === 'string' ? v.mediaType : (headerType?.split(';')[0].trim() ?? '');
  if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList || (mediaType === '' && Array.isArray(v.manifests))) {
    if (!Array.isArray(v.manifests) || v.manifests.length > MAX_ENTRIES) bad(what, `index manifests must be a list of at most ${MAX_ENTRIES}`);
    return { kind: 'index', mediaType: mediaType || MEDIA.ociIndex, manifests: v.manifests.map((m, i) => parseDescriptor(m, `${what} manifests[${i}]`)) };
  }
  if (mediaType === MEDIA.ociManifest || mediaType === MEDIA.dockerManifest || mediaType === '') {
    if (!Array.isArray(v.layers) || v.layers.length > MAX_ENTRIES) bad(what, `manifest layers must be a list of at most ${MAX_ENTRIES}`);
    const m: ImageManifest = {
      kind: 'manifest',
      mediaType: mediaType || MEDIA.ociManifest,
      config: parseDescriptor(v.config, `${what} config`),
      layers: v.layers.map((l, i) => parseDescriptor(l, `${what} layers[${i}]`)),
    };
    if (typeof v.artifactType === 'string') m.artifactType = v.artifactType;
    if (v.subject !== undefined) m.subject = parseDescriptor(v.subject, `${what} subject`);
    const a = annotations(v.annotations, what);
    if (a) m.annotations = a;
    return m;
  }
  bad(what, `media type ${JSON.stringify(mediaType)} is not an image manifest or index`);
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]{1,32}$/.test(p))) {
    throw new ImageError('POLICY_INVALID', `platform ${JSON.stringify(text)} must be os/arch[/variant], e.g. linux/amd64`);
  }
  return { os: parts[0], architecture: parts[1], ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** containerd's platform matcher, reduced: os and architecture equal; a variant, when asked for, equal too. */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor | undefined {
  return index.manifests.find((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && (want.variant === undefined || m.platform.variant === want.variant));
}
