/**
 * Informers for Coffer's controllers: client-node's ListWatch (list, then watch from the list's resourceVersion;
 * on 410 Gone — an Expired ERROR event or status — it relists) with three additions:
 * - watches ask for BOOKMARK events (`allowWatchBookmarks=true`), so a quiet collection's resourceVersion stays
 *   fresh and a reconnect resumes instead of relisting (client-node 1.4 handles BOOKMARKs but never asks);
 * - lists go through KubeRest, so the cache holds the server's JSON as is (the typed client would turn it into
 *   model objects whose dates are Date instances; controllers write these objects back);
 * - `synced()` is true once a list succeeded (ListWatch.start() resolves even when the list failed), and any
 *   other watch error restarts the informer after a pause, like client-go's reflector.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeRest } from '../kube-rest.js';
import type { ControllerContext } from './types.js';

export type Obj = Record<string, any>;

export interface InformerSpec {
  /** Log name. */
  name: string;
  /** Collection path, e.g. /api/v1/pods or /apis/coffer.dev/v1alpha1/isolationpolicies. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface CachedInformer {
  readonly name: string;
  get(name: string, namespace?: string): Obj | undefined;
  list(): Obj[];
  synced(): boolean;
  on(verb: 'add' | 'update' | 'delete', cb: (o: Obj) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Watch that asks for bookmarks on every request ListWatch makes. */
class BookmarkWatch extends Watch {
  override watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, done);
  }
}

export function makeCachedInformer(kc: KubeConfig, rest: KubeRest, ctx: ControllerContext, spec: InformerSpec, restartDelayMs = 1000): CachedInformer {
  let listed = false;
  let stopped = false;
  const query = new URLSearchParams();
  if (spec.labelSelector) query.set('labelSelector', spec.labelSelector);
  if (spec.fieldSelector) query.set('fieldSelector', spec.fieldSelector);
  const listFn = async (): Promise<KubernetesListObject<KubernetesObject>> => {
    const q = query.toString();
    const r = await rest.request<KubernetesListObject<KubernetesObject>>('GET', spec.path + (q ? `?${q}` : ''));
    listed = true;
    return r;
  };
  const lw = new ListWatch<KubernetesObject>(spec.path, new BookmarkWatch(kc), listFn, false, spec.labelSelector, spec.fieldSelector);
  lw.on('error', (err: unknown) => {
    if (stopped) return;
    ctx.log('informer_error', { informer: spec.name, error: String((err as Error)?.message ?? err) });
    setTimeout(() => {
      if (!stopped) void lw.start().catch(() => {});
    }, restartDelayMs).unref();
  });
  return {
    name: spec.name,
    get: (name, namespace) => lw.get(name, namespace) as Obj | undefined,
    list: () => lw.list() as Obj[],
    synced: () => listed,
    on: (verb, cb) => lw.on(verb, cb as (o: KubernetesObject) => void),
    start: async () => {
      stopped = false;
      await lw.start();
    },
    stop: async () => {
      stopped = true;
      await lw.stop();
    },
  };
}

/**
 * Starts the informers and calls `onSynced` once every one of them has listed (retrying failed lists in the
 * background); a controller enqueues its full key set then, so nothing is reconciled against a partial view.
 */
export async function startAll(informers: CachedInformer[], onSynced: () => void, pollMs = 50): Promise<() => void> {
  await Promise.all(informers.map((i) => i.start()));
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    if (informers.every((i) => i.synced())) {
      timer = undefined;
      onSynced();
    } else timer = setTimeout(check, pollMs);
  };
  check();
  return () => timer && clearTimeout(timer);
}
