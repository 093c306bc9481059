import { ImageError, type CandidateFailure } from './errors.js';
import { signatureBatches } from './cosign.js';
import { formatPlatform, selectPlatform, type Fetched } from './oci.js';
import type { CompiledImagePolicy } from './policy.js';
import { parseImageRef, pinnedRef, repositoryOf, type ImageRef } from './reference.js';
import type { ImageSource } from './source.js';
import type { LoadedTrustRoot } from './trust-root.js';
import { verifyCandidate, type SigstoreMemo, type VerifiedSignature } from './verify-signature.js';

export interface ImageVerification {
  image: string;
  /** The digest whose signature verified (the index's, or the selected platform manifest's). */
  digest: string;
  /** repo@sha256:… — what the webhook writes into the pod. */
  pinned: string;
  signature: VerifiedSignature;
  /** When the reference resolved to an index: the platform manifest chosen. */
  platform?: { platform: string; digest: string };
}

export interface VerifyImageOptions {
  source: ImageSource;
  policy: CompiledImagePolicy;
  trustRoot?: LoadedTrustRoot;
  sigstoreMemo?: SigstoreMemo;
}

// Failure codes from most to least telling: a denial reports the most specific reason any candidate gave.
const SPECIFICITY = ['IDENTITY_MISMATCH', 'PAYLOAD_MISMATCH', 'CERTIFICATE_INVALID', 'TLOG_INVALID', 'TRUST_ROOT_INVALID', 'SIGNATURE_INVALID'];

/**
 * Resolve → select platform → discover signatures → verify: the image is admitted iff some signature on its
 * digest (or, for an index, on the selected platform's manifest) verifies for some signer of the policy and is
 * bound to that digest and repository. Anything that cannot be checked is a rejection (ImageError thrown).
 */
export async function verifyImage(image: string, o: VerifyImageOptions): Promise<ImageVerification> {
  const ref = parseImageRef(image);
  const repository = repositoryOf(ref);
  const p = o.policy;
  if (p.repositories && !p.repositories.some((g) => g.matches(repository))) {
    throw new ImageError('REPOSITORY_NOT_ALLOWED', `repository ${repository} matches none of the allowed ${p.repositories.map((g) => g.source).join(', ')}`);
  }
  if (p.needsTrustRoot && !o.trustRoot && p.signers.every((s) => s.kind === 'keyless')) {
    throw new ImageError('TRUST_ROOT_INVALID', 'the policy names only keyless signers and no Sigstore trusted root is configured');
  }
  const top = await fetchManifest(o.source, ref, ref.digest ?? ref.tag!);
  const targets: Fetched[] = [top];
  let platform: ImageVerification['platform'];
  if (top.doc.kind === 'index') {
    const want = formatPlatform(p.platform);
    const d = selectPlatform(top.doc, p.platform);
    if (!d) throw new ImageError('PLATFORM_NOT_FOUND', `${image}: the image index has no ${want} manifest`);
    const m = await fetchManifest(o.source, ref, d.digest);
    if (m.doc.kind !== 'manifest') throw new ImageError('MANIFEST_INVALID', `${image}: platform entry ${d.digest} is not an image manifest`);
    targets.push(m);
    platform = { platform: want, digest: d.digest };
  }
  const failures: CandidateFailure[] = [];
  let found = 0;
  for (const t of targets) {
    // Batches cheapest first: the first verifying signature ends the search (later ones could only admit too).
    for await (const candidates of signatureBatches(o.source, ref, t.digest)) {
      found += candidates.length;
      for (const c of candidates) {
        for (const s of p.signers) {
          try {
            const sig = verifyCandidate(c, s, { digest: t.digest, manifest: t.bytes, repository, trustRoot: o.trustRoot, sigstoreMemo: o.sigstoreMemo });
            return { image, digest: t.digest, pinned: pinnedRef(ref, t.digest), signature: sig, ...(platform ? { platform } : {}) };
          } catch (e) {
            if (!(e instanceof ImageError)) throw e;
            failures.push({ signature: c.origin, code: e.code, message: e.message });
          }
        }
      }
    }
  }
  if (found === 0) throw new ImageError('NO_SIGNATURES', `${image} (${top.digest}) has no signatures (no cosign .sig tag, no referrers)`);
  failures.sort((a, b) => rank(a.code) - rank(b.code));
  const best = failures[0];
  const err = new ImageError(best.code, `no signature verifies for ${image} (${top.digest}): ${best.message}${failures.length > 1 ? ` (and ${failures.length - 1} other failed check${failures.length > 2 ? 's' : ''})` : ''}`);
  (err as ImageError & { failures?: CandidateFailure[] }).failures = failures;
  throw err;
}

function rank(code: string): number {
  const i = SPECIFICITY.indexOf(code);
  return i < 0 ? SPECIFICITY.length : i;
}

async function fetchManifest(src: ImageSource, ref: ImageRef, reference: string): Promise<Fetched> {
  const m = await src.manifest(ref, reference);
  if (!m) throw new ImageError('NOT_FOUND', `${repositoryOf(ref)}:${reference} does not exist in the registry`);
  return m;
}
