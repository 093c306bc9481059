import { ImageError } from '../../images/errors.js';
import type { ImageVerifier } from '../../images/verifier.js';
import type { IsolationPolicy } from '../crds/types.js';
import { formatDenial, matchingPolicies, type AdmissionDecision, type Denial } from './engine.js';
import type { PatchOp } from './json-patch.js';
import type { Pod } from './pod.js';

/** Distinct images verified per pod (a pod with more is denied). */
export const MAX_POD_IMAGES = 64;

/** Outcome of verifying one image for one policy: the pinned reference, or why not (a stable ImageError code). */
export type ImageVerdict = { ok: true; pinned: string; digest: string } | { ok: false; code: string; message: string };
/** policy name → image as written in the pod → verdict. */
export type ImageVerdicts = ReadonlyMap<string, ReadonlyMap<string, ImageVerdict>>;

/**
 * The I/O half of the image step, run before the pure decision: every distinct image of the pod (containers,
 * init and ephemeral containers) under every matched policy that has spec.images, verified concurrently. Any
 * error — registry down, timeout, a bug — becomes a failed verdict, so the decision denies (fail closed).
 */
export async function verifyPodImages(
  pod: Pod,
  namespaceLabels: Record<string, string>,
  policies: readonly IsolationPolicy[],
  verifier: ImageVerifier | undefined,
  deadlineMs?: number,
): Promise<ImageVerdicts | undefined> {
  const governed = matchingPolicies(policies, namespaceLabels, pod.metadata?.labels).filter((p) => p.spec.images !== undefined);
  if (governed.length === 0 || !verifier) return undefined;
  const images = new Set<string>();
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    for (const c of pod.spec?.[kind] ?? []) if (typeof c.image === 'string' && c.image !== '') images.add(c.image);
  }
  // Bounded fan-out: one pod may not make the webhook hit registries hundreds of times at once.
  if (images.size > MAX_POD_IMAGES) {
    const over = new Map<string, Map<string, ImageVerdict>>();
    const verdict: ImageVerdict = { ok: false, code: 'TOO_LARGE', message: `the pod names ${images.size} distinct images; at most ${MAX_POD_IMAGES} are verified per pod` };
    for (const p of governed) over.set(p.metadata.name, new Map([...images].map((i) => [i, verdict])));
    return over;
  }
  // Warm path: every image already verified for every policy → answer synchronously.
  const warm = new Map<string, Map<string, ImageVerdict>>();
  let allCached = true;
  for (const p of governed) {
    const m = new Map<string, ImageVerdict>();
    warm.set(p.metadata.name, m);
    for (const image of images) {
      const v = verifier.cached(image, p.spec.images!);
      if (!v) {
        allCached = false;
        break;
      }
      m.set(image, { ok: true, pinned: v.pinned, digest: v.digest });
    }
    if (!allCached) break;
  }
  if (allCached) return warm;
  const out = new Map<string, Map<string, ImageVerdict>>();
  const work = Promise.all(
    governed.map(async (p) => {
      const m = new Map<string, ImageVerdict>();
      out.set(p.metadata.name, m);
      await Promise.all(
        [...images].map(async (image) => {
          try {
            const v = await verifier.verify(image, p.spec.images!);
            m.set(image, { ok: true, pinned: v.pinned, digest: v.digest });
          } catch (e) {
            if (e instanceof ImageError) m.set(image, { ok: false, code: e.code, message: e.message });
            else m.set(image, { ok: false, code: 'INTERNAL', message: `verification failed unexpectedly: ${(e as Error)?.message ?? String(e)}` });
          }
        }),
      );
    }),
  );
  if (deadlineMs === undefined) {
    await work;
    return out;
  }
  // Answer before the API server's webhook timeout: past it, the configuration's failurePolicy decides, and
  // `Ignore` would admit the pod unverified. Images still pending are denied (their verification goes on and
  // fills the cache for the retry).
  let timer: NodeJS.Timeout | undefined;
  const expired = await Promise.race([work.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadlineMs)))]);
  clearTimeout(timer);
  if (!expired) return out;
  const snapshot = new Map<string, Map<string, ImageVerdict>>();
  for (const p of governed) {
    const done = out.get(p.metadata.name) ?? new Map<string, ImageVerdict>();
    const m = new Map(done);
    for (const image of images) if (!m.has(image)) m.set(image, { ok: false, code: 'REGISTRY_UNREACHABLE', message: `verification did not finish within ${deadlineMs} ms (registry slow or unreachable); retry` });
    snapshot.set(p.metadata.name, m);
  }
  return snapshot;
}

/**
 * `kubectl debug` adds containers through the pods/ephemeralcontainers subresource (an UPDATE), which never passes
 * through pod CREATE admission: under a policy with spec.images, every ephemeral container's image must verify
 * too, and is pinned the same way. Only ephemeral containers are touched (the rest of a running pod is immutable).
 * Validation (withPatch false) accepts only images already pinned to their verified digest.
 */
export function decideEphemeralImages(pod: Pod, namespaceLabels: Record<string, string>, policies: readonly IsolationPolicy[], verdicts: ImageVerdicts | undefined, withPatch: boolean): AdmissionDecision {
  const governed = matchingPolicies(policies, namespaceLabels, pod.metadata?.labels).filter((p) => p.spec.images !== undefined);
  const denials: Denial[] = [];
  const patch: PatchOp[] = [];
  (pod.spec?.ephemeralContainers ?? []).forEach((c, i) => {
    let pin: string | undefined;
    for (const p of governed) {
      const name = p.metadata.name;
      const v = typeof c.image === 'string' ? verdicts?.get(name)?.get(c.image) : undefined;
      if (!v) denials.push({ policy: name, rule: 'image-signature', message: `ephemeralContainer "${c.name}" image "${c.image ?? ''}" was not verified (no image verifier is configured)` });
      else if (!v.ok) denials.push({ policy: name, rule: v.code === 'REPOSITORY_NOT_ALLOWED' ? 'image-repository' : 'image-signature', message: `ephemeralContainer "${c.name}" image "${c.image}": ${v.message} [${v.code}]` });
      else if (pin !== undefined && pin !== v.pinned) denials.push({ policy: name, rule: 'image-signature', message: `ephemeralContainer "${c.name}" image "${c.image}" verifies as ${pin} and ${v.pinned}; cannot pin both` });
      else pin = v.pinned;
    }
    if (pin !== undefined && pin !== c.image) {
      if (withPatch) patch.push({ op: 'replace', path: `/spec/ephemeralContainers/${i}/image`, value: pin });
      else denials.push({ policy: governed[0].metadata.name, rule: 'image-pin', message: `ephemeralContainer "${c.name}" image "${c.image}" is not pinned to its verified digest ${pin}; was the mutating webhook skipped?` });
    }
  });
  if (denials.length > 0) return { allowed: false, reason: formatDenial(denials[0]), denials, patch: [], patchRules: [], explanation: null, warnings: [] };
  return { allowed: true, denials: [], patch, patchRules: patch.map(() => 'image-pin'), explanation: null, warnings: [] };
}
