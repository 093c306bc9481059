import { ImageError } from '../../images/errors.js';
import type { ImageVerifier } from '../../images/verifier.js';
import type { IsolationPolicy } from '../crds/types.js';
import { matchingPolicies } from './engine.js';
import type { Pod } from './pod.js';

/** Outcome of verifying one image for one policy: the pinned reference, or why not (a stable ImageError code). */
export type ImageVerdict = { ok: true; pinned: string; digest: string } | { ok: false; code: string; message: string };
/** policy name → image as written in the pod → verdict. */
export type ImageVerdicts = ReadonlyMap<string, ReadonlyMap<string, ImageVerdict>>;

/**
 * The I/O half of the image step, run before the pure decision: every distinct image of the pod (containers,
 * init and ephemeral containers) under every matched policy that has spec.images, verified concurrently. Any
 * error — registry down, timeout, a bug — becomes a failed verdict, so the decision denies (fail closed).
 */
export async function verifyPodImages(pod: Pod, namespaceLabels: Record<string, string>, policies: readonly IsolationPolicy[], verifier: ImageVerifier | undefined): Promise<ImageVerdicts | undefined> {
  const governed = matchingPolicies(policies, namespaceLabels, pod.metadata?.labels).filter((p) => p.spec.images !== undefined);
  if (governed.length === 0 || !verifier) return undefined;
  const images = new Set<string>();
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    for (const c of pod.spec?.[kind] ?? []) if (typeof c.image === 'string' && c.image !== '') images.add(c.image);
  }
  const out = new Map<string, Map<string, ImageVerdict>>();
  await Promise.all(
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
  return out;
}
