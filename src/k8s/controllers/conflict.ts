import { KubeApiError } from '../kube-rest.js';

/**
 * Runs one reconcile pass; when a write answers 409 Conflict (a resourceVersion precondition failed, or the object
 * appeared meanwhile) it runs again with `fresh` = true, so the pass reads the object from the API server instead
 * of the informer cache, which may not have seen the newer version yet. Gives up after `attempts` passes (the
 * work queue then retries with backoff).
 */
export async function withConflictRetry(pass: (fresh: boolean) => Promise<void>, onConflict: (attempt: number, err: KubeApiError) => void = () => {}, attempts = 5): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await pass(i > 0);
      return;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.code === 409) || i + 1 >= attempts) throw e;
      onConflict(i + 1, e);
    }
  }
}

/** GET that maps 404 to undefined. */
export async function getOrUndefined<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (e) {
    if (e instanceof KubeApiError && e.code === 404) return undefined;
    throw e;
  }
}
