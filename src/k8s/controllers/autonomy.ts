/**
 * The autonomy controller: informers on Nodes and Pods feed a work queue keyed by node name; each key is
 * reconciled by the pure `reconcileNode` (autonomy-reconcile.ts) and its actions are applied as JSON merge patches
 * carrying the observed resourceVersion, so a concurrent change yields 409 and a retry on fresh state.
 */
import { CoreV1Api, makeInformer, type Informer, type KubernetesObject, type ObjectCache, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { KubeApiError, KubeRest } from '../kube-rest.js';
import { MANAGED_MARK, reconcileNode, type AutonomyAction } from './autonomy-reconcile.js';
import type { ControllerContext, ControllerFactory, RunningController } from './types.js';
import { WorkQueue } from './work-queue.js';

export interface AutonomyOptions {
  autonomousNamespaces?: string[];
}

async function apply(rest: KubeRest, a: AutonomyAction): Promise<void> {
  if (a.kind === 'setPodTolerations') {
    const patch = { metadata: { resourceVersion: a.resourceVersion, annotations: { [MANAGED_MARK]: a.mark } }, spec: { tolerations: a.tolerations } };
    await rest.request('PATCH', `/api/v1/namespaces/${encodeURIComponent(a.namespace)}/pods/${encodeURIComponent(a.name)}`, patch, 'application/merge-patch+json');
  } else {
    const patch = { metadata: { resourceVersion: a.resourceVersion, annotations: a.annotations } };
    await rest.request('PATCH', `/api/v1/nodes/${encodeURIComponent(a.name)}`, patch, 'application/merge-patch+json');
  }
}

/** client-node informers stop on a watch error; restart them after a pause (relist), like client-go's reflector. */
function keepRunning<T extends KubernetesObject>(inf: Informer<T>, name: string, ctx: ControllerContext, isStopped: () => boolean): void {
  inf.on('error', (err) => {
    if (isStopped()) return;
    ctx.log('informer_error', { informer: name, error: String((err as Error)?.message ?? err) });
    setTimeout(() => {
      if (!isStopped()) void inf.start().catch(() => {});
    }, 1000).unref();
  });
}

export const autonomyController: ControllerFactory<AutonomyOptions> = {
  name: 'autonomy',
  description: 'keeps pods on nodes annotated coffer.dev/autonomy=true from being evicted during an outage; reports outages on the Node',
  async start(ctx: ControllerContext, options: AutonomyOptions): Promise<RunningController> {
    const core = ctx.kubeConfig.makeApiClient(CoreV1Api);
    const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/autonomy');
    const nodes = makeInformer<V1Node>(ctx.kubeConfig, '/api/v1/nodes', () => core.listNode());
    const pods = makeInformer<V1Pod>(ctx.kubeConfig, '/api/v1/pods', () => core.listPodForAllNamespaces());
    const desired = { autonomousNamespaces: new Set(options.autonomousNamespaces ?? []) };
    let stopped = false;

    const queue = new WorkQueue(
      async (nodeName) => {
        const node = (nodes as unknown as ObjectCache<V1Node>).get(nodeName);
        const bound = (pods as unknown as ObjectCache<V1Pod>).list().filter((p) => p.spec?.nodeName === nodeName);
        for (const a of reconcileNode(node, bound, desired)) {
          try {
            await apply(rest, a);
            ctx.log('autonomy_action', a.kind === 'annotateNode' ? { action: a.kind, node: a.name, annotations: a.annotations } : { action: a.kind, pod: `${a.namespace}/${a.name}`, managed: a.mark === 'managed' });
          } catch (e) {
            // Gone: nothing to do. Conflict: the informer will deliver the newer object and requeue the node.
            if (e instanceof KubeApiError && (e.code === 404 || e.code === 409)) continue;
            throw e;
          }
        }
      },
      (key, err, attempt) => ctx.log('autonomy_retry', { node: key, attempt, error: String((err as Error)?.message ?? err) }),
    );

    const enqueueNode = (n: V1Node) => n.metadata?.name && queue.add(n.metadata.name);
    const enqueuePod = (p: V1Pod) => p.spec?.nodeName && queue.add(p.spec.nodeName);
    for (const verb of ['add', 'update', 'delete'] as const) {
      nodes.on(verb, enqueueNode);
      pods.on(verb, enqueuePod);
    }
    keepRunning(nodes, 'nodes', ctx, () => stopped);
    keepRunning(pods, 'pods', ctx, () => stopped);
    await pods.start();
    await nodes.start();
    ctx.log('controller_started', { controller: 'autonomy', autonomousNamespaces: [...desired.autonomousNamespaces] });
    return {
      name: 'autonomy',
      async stop() {
        stopped = true;
        queue.stop();
        await nodes.stop();
        await pods.stop();
        rest.close();
      },
    };
  },
};
