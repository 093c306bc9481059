/**
 * The RuntimeClass installer: informers on RuntimeProfiles and RuntimeClasses feed a work queue keyed by class
 * name; each key is reconciled by `reconcileRuntimeClass` (runtimeclass-reconcile.ts). Updates are PUTs carrying
 * the observed resourceVersion and deletes carry uid + resourceVersion preconditions, so a concurrent writer yields
 * 409 and the pass reruns on a fresh read.
 */
import { KubeApiError, KubeRest } from '../kube-rest.js';
import { COFFER_GROUP, COFFER_VERSION, type RuntimeProfile } from '../crds/types.js';
import { getOrUndefined, withConflictRetry } from './conflict.js';
import { makeCachedInformer, startAll, type Obj } from './informers.js';
import { effectiveProfiles, isOwned, reconcileRuntimeClass, type RuntimeClassAction } from './runtimeclass-reconcile.js';
import type { ControllerContext, ControllerFactory, RunningController } from './types.js';
import { WorkQueue } from './work-queue.js';

export interface RuntimeClassOptions {
  /** Install the built-in profiles' classes too (default true); RuntimeProfile objects override them by name. */
  builtinProfiles?: boolean;
}

const RC_PATH = '/apis/node.k8s.io/v1/runtimeclasses';

async function apply(rest: KubeRest, a: RuntimeClassAction): Promise<void> {
  const at = `${RC_PATH}/${encodeURIComponent(a.name)}`;
  if (a.kind === 'create') await rest.request('POST', RC_PATH, a.object);
  else if (a.kind === 'update') await rest.request('PUT', at, a.object);
  else if (a.kind === 'delete') {
    try {
      await rest.request('DELETE', at, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: a.uid, resourceVersion: a.resourceVersion } });
    } catch (e) {
      if (!(e instanceof KubeApiError && e.code === 404)) throw e;
    }
  }
}

export const runtimeClassController: ControllerFactory<RuntimeClassOptions> = {
  name: 'runtimeclass',
  description: 'installs and updates node.k8s.io/v1 RuntimeClasses from RuntimeProfiles (built-ins included); removes those whose profile is gone',
  async start(ctx: ControllerContext, options: RuntimeClassOptions): Promise<RunningController> {
    const builtins = options.builtinProfiles !== false;
    const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/runtimeclass');
    const profiles = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'runtimeprofiles', path: `/apis/${COFFER_GROUP}/${COFFER_VERSION}/runtimeprofiles` });
    const classes = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'runtimeclasses', path: RC_PATH });
    let profileMap = new Map<string, RuntimeProfile>();
    const invalidSeen = new Set<string>();
    const rebuild = () => {
      profileMap = effectiveProfiles(profiles.list(), builtins, (name, err) => {
        const k = `${name}:${err.message}`;
        if (!invalidSeen.has(k)) ctx.log('runtimeprofile_invalid', { profile: name, error: err.message });
        invalidSeen.add(k);
      });
    };
    const notOwnedSeen = new Set<string>();

    const queue = new WorkQueue(
      (name) =>
        withConflictRetry(
          async (fresh) => {
            const observed = fresh ? await getOrUndefined(() => rest.request<Obj>('GET', `${RC_PATH}/${encodeURIComponent(name)}`)) : classes.get(name);
            for (const a of reconcileRuntimeClass(name, profileMap.get(name), observed)) {
              if (a.kind === 'notOwned') {
                if (!notOwnedSeen.has(name)) ctx.log('runtimeclass_not_owned', { runtimeClass: name, message: `RuntimeClass ${name} exists without ${'app.kubernetes.io/managed-by'}=coffer; left as it is` });
                notOwnedSeen.add(name);
                continue;
              }
              await apply(rest, a);
              ctx.log('runtimeclass_action', { action: a.kind, runtimeClass: name, ...(a.kind === 'delete' ? { reason: a.reason } : {}) });
            }
          },
          (attempt, err) => ctx.log('runtimeclass_conflict', { runtimeClass: name, attempt, error: err.message }),
        ),
      (key, err, attempt) => ctx.log('runtimeclass_retry', { runtimeClass: key, attempt, error: String((err as Error)?.message ?? err) }),
    );

    let synced = false;
    const enqueueAll = () => {
      for (const n of profileMap.keys()) queue.add(n);
      for (const rc of classes.list()) if (isOwned(rc) || profileMap.has(rc.metadata.name)) queue.add(rc.metadata.name);
    };
    for (const verb of ['add', 'update', 'delete'] as const) {
      profiles.on(verb, (p) => {
        rebuild();
        if (synced) queue.add(p.metadata.name);
      });
      classes.on(verb, (rc) => synced && queue.add(rc.metadata.name));
    }
    const cancel = await startAll([profiles, classes], () => {
      synced = true;
      rebuild();
      enqueueAll();
      ctx.log('controller_synced', { controller: 'runtimeclass', profiles: profileMap.size });
    });
    ctx.log('controller_started', { controller: 'runtimeclass', builtinProfiles: builtins });
    return {
      name: 'runtimeclass',
      settled: () => queue.settled(),
      async stop() {
        cancel();
        queue.stop();
        await Promise.all([profiles.stop(), classes.stop()]);
        rest.close();
      },
    };
  },
};
