import { ImageError } from './errors.js';
import { sha256Digest } from './digest.js';
import { MEDIA, type Descriptor, type ImageManifest } from './oci.js';
import type { ImageSource, Repo } from './source.js';

/** cosign's annotation keys on a signature layer (sigstore/cosign pkg/oci/static/options.go, pkg/cosign/…). */
export const COSIGN_ANNOTATIONS = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  bundle: 'dev.sigstore.cosign/bundle',
} as const;

/** One signature found for a digest: cosign's simple-signing layer, or a Sigstore bundle. */
export type SignatureCandidate =
  | {
      kind: 'simple-signing';
      /** Where it was found, for messages: "tag sha256-….sig layer 0" or "referrer sha256:…". */
      origin: string;
      payload: Buffer;
      signature: Buffer;
      certificate?: string;
      chain?: string;
      rekorBundle?: string;
    }
  | { kind: 'bundle'; origin: string; bundle: unknown };

export const SIG_LIMITS = { payloadBytes: 64 * 1024, bundleBytes: 256 * 1024, candidates: 32, annotationBytes: 64 * 1024 } as const;

/** cosign's tag schema: sha256:<hex> → sha256-<hex>.sig (and .att / .sbom, not used here). */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** OCI 1.1 referrers tag schema fallback: sha256:<hex> → sha256-<hex> (an index of referrer descriptors). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/**
 * Every signature for `digest` in `repo`: the `.sig` tag (simple-signing layers with cosign's annotations) and
 * the referrers (API, else the tag-schema index): cosign's OCI 1.1 signature artifacts and Sigstore bundles.
 * Every manifest and blob read is digest-checked by the source; layers beyond the caps are ignored, not trusted.
 */
export async function discoverSignatures(src: ImageSource, repo: Repo, digest: string): Promise<SignatureCandidate[]> {
  const out: SignatureCandidate[] = [];
  for await (const batch of signatureBatches(src, repo, digest)) out.push(...batch);
  return out.slice(0, SIG_LIMITS.candidates);
}

/**
 * The same signatures in the order they cost: first the `.sig` tag and the referrers API, fetched concurrently
 * (one round trip, plus one for the payloads); then, only if the registry has no referrers API, the tag-schema
 * referrers index. A caller that stops at the first verifying signature (verifyImage) thus spares a registry
 * without the API one request per image; one that reads every batch sees every signature. At most
 * SIG_LIMITS.candidates in all.
 */
export async function* signatureBatches(src: ImageSource, repo: Repo, digest: string): AsyncGenerator<SignatureCandidate[]> {
  let left: number = SIG_LIMITS.candidates;
  const tag = signatureTag(digest);
  const [first, api] = await Promise.all([
    src.manifest(repo, tag).then((sig) => (sig && sig.doc.kind === 'manifest' ? fromSignatureManifest(src, repo, sig.doc, `tag ${tag}`, digest) : [])),
    src.referrers(repo, digest),
  ]);
  const fromApi = api ? await fromReferrers(src, repo, digest, api) : [];
  const batch = [...first, ...fromApi].slice(0, left);
  left -= batch.length;
  if (batch.length > 0) yield batch;
  if (api !== null || left <= 0) return;
  const fallback = await src.manifest(repo, referrersTag(digest));
  if (!fallback || fallback.doc.kind !== 'index') return;
  const more = (await fromReferrers(src, repo, digest, fallback.doc.manifests)).slice(0, left);
  if (more.length > 0) yield more;
}

/** Signature candidates from referrer descriptors (API answer or tag-schema index), fetched concurrently. */
async function fromReferrers(src: ImageSource, repo: Repo, digest: string, refs: readonly Descriptor[]): Promise<SignatureCandidate[]> {
  const wanted = refs.slice(0, SIG_LIMITS.candidates).filter((d) => {
    const at = d.artifactType ?? '';
    return at === MEDIA.cosignArtifactSig || at.startsWith(MEDIA.sigstoreBundlePrefix) || at === MEDIA.cosignSimpleSigning;
  });
  const found = await Promise.all(
    wanted.map(async (d) => {
      const m = await src.manifest(repo, d.digest);
      if (!m || m.doc.kind !== 'manifest') return [];
      // The referrer must actually point at this digest (a referrers index is only a hint).
      if (m.doc.subject?.digest !== digest) return [];
      return fromSignatureManifest(src, repo, m.doc, `referrer ${d.digest}`, digest);
    }),
  );
  return found.flat();
}

/**
 * The payloads `cosign sign` writes for `digest` without annotations: Go's json.Marshal of sigstore's
 * payload.Cosign (fields in struct order, no spaces, `"optional":null`), naming the repository as cosign does
 * (go-containerregistry's Repository.Name(): Docker Hub is index.docker.io). Only a guess: see knownPayload.
 */
export function expectedPayloads(repo: Repo, digest: string): Buffer[] {
  const names = [`${repo.registry}/${repo.path}`];
  if (repo.registry === 'docker.io') names.push(`index.docker.io/${repo.path}`);
  return names.map((n) => Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': n }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null })));
}

/**
 * A payload blob need not be fetched when its bytes are already known: the layer descriptor (inside a manifest the
 * source digest-checked) names the payload by sha256, and bytes that hash to it are the blob. A cold admission of
 * a cosign-signed image thus costs one registry round trip less. A wrong guess only means a fetch.
 */
function knownPayload(guesses: readonly Buffer[], layerDigest: string, size: number): Buffer | undefined {
  for (const g of guesses) if (g.length === size && sha256Digest(g) === layerDigest) return g;
  return undefined;
}

async function fromSignatureManifest(src: ImageSource, repo: Repo, m: ImageManifest, origin: string, digest: string): Promise<SignatureCandidate[]> {
  const guesses = expectedPayloads(repo, digest);
  // Layers are checked in order (a cap error stays where it was), their blobs fetched concurrently.
  const found = await Promise.all(
    m.layers.slice(0, SIG_LIMITS.candidates).map(async (layer, i): Promise<SignatureCandidate | undefined> => {
      const where = `${origin} layer ${i}`;
      if (layer.mediaType === MEDIA.cosignSimpleSigning) {
        const a = layer.annotations ?? {};
        const sig = a[COSIGN_ANNOTATIONS.signature];
        if (sig === undefined) return undefined;
        if (layer.size > SIG_LIMITS.payloadBytes) throw new ImageError('TOO_LARGE', `${where}: payload of ${layer.size} bytes exceeds ${SIG_LIMITS.payloadBytes}`);
        if (Object.values(a).some((v) => v.length > SIG_LIMITS.annotationBytes)) throw new ImageError('TOO_LARGE', `${where}: annotation larger than ${SIG_LIMITS.annotationBytes} bytes`);
        const payload = knownPayload(guesses, layer.digest, layer.size) ?? (await src.blob(repo, layer.digest, SIG_LIMITS.payloadBytes));
        return {
          kind: 'simple-signing',
          origin: where,
          payload,
          signature: Buffer.from(sig, 'base64'),
          ...(a[COSIGN_ANNOTATIONS.certificate] ? { certificate: a[COSIGN_ANNOTATIONS.certificate] } : {}),
          ...(a[COSIGN_ANNOTATIONS.chain] ? { chain: a[COSIGN_ANNOTATIONS.chain] } : {}),
          ...(a[COSIGN_ANNOTATIONS.bundle] ? { rekorBundle: a[COSIGN_ANNOTATIONS.bundle] } : {}),
        };
      }
      if (layer.mediaType.startsWith(MEDIA.sigstoreBundlePrefix)) {
        const bytes = await src.blob(repo, layer.digest, SIG_LIMITS.bundleBytes);
        let bundle: unknown;
        try {
          bundle = JSON.parse(bytes.toString('utf8'));
        } catch {
          throw new ImageError('SIGNATURE_INVALID', `${where}: Sigstore bundle is not JSON`);
        }
        return { kind: 'bundle', origin: where, bundle };
      }
      return undefined;
    }),
  );
  return found.filter((c): c is SignatureCandidate => c !== undefined);
}

/**
 * cosign's simple-signing payload (containers/image docs/containers-signature.5.md "JSON Data Format"):
 * {"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container
 * image signature"},"optional":{…}}. The signature covers these exact bytes; the digest inside binds it to D.
 */
export interface SimpleSigning {
  dockerReference: string;
  manifestDigest: string;
}

export function parseSimpleSigning(payload: Buffer, where: string): SimpleSigning {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ImageError('PAYLOAD_MISMATCH', `${where}: signed payload is not JSON`);
  }
  const c = (v as { critical?: Record<string, unknown> } | null)?.critical;
  const type = c?.type;
  const ref = (c?.identity as { 'docker-reference'?: unknown } | undefined)?.['docker-reference'];
  const dig = (c?.image as { 'docker-manifest-digest'?: unknown } | undefined)?.['docker-manifest-digest'];
  if (typeof type !== 'string' || type.toLowerCase() !== 'cosign container image signature') throw new ImageError('PAYLOAD_MISMATCH', `${where}: payload type ${JSON.stringify(type)} is not a cosign container image signature`);
  if (typeof ref !== 'string' || typeof dig !== 'string') throw new ImageError('PAYLOAD_MISMATCH', `${where}: payload lacks critical.identity.docker-reference or critical.image.docker-manifest-digest`);
  return { dockerReference: ref, manifestDigest: dig };
}
