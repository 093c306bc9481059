/**
 * The autonomy controller: informers on Nodes, Pods, Namespaces and IsolationPolicies feed a work queue keyed by
 * node name; each key is reconciled by the pure `reconcileNode` (autonomy-reconcile.ts) and its actions are
 * applied as JSON merge patches carrying the observed resourceVersion, so a concurrent change yields 409 and a
 * retry on fresh state. Nothing is reconciled before every informer has listed: with a partial view a pod could
 * lose tolerations it should keep.
 */
import { KubeApiError, KubeRest } from '../kube-rest.js';
import { COFFER_GROUP, COFFER_VERSION, type IsolationPolicy } from '../crds/types.js';
import { MANAGED_MARK, reconcileNode, type AutonomyAction, type AutonomyDesired } from './autonomy-reconcile.js';
import { makeCachedInformer, startAll } from './informers.js';
import { effectivePolicies, labelsOfNamespace } from './policies.js';
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

export const autonomyController: ControllerFactory<AutonomyOptions> = {
  name: 'autonomy',
  description: 'keeps pods on nodes annotated coffer.dev/autonomy=true, or selected by an IsolationPolicy with autonomy: true, from being evicted during an outage; reports outages on the Node',
  async start(ctx: ControllerContext, options: AutonomyOptions): Promise<RunningController> {
    const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/autonomy');
    const nodes = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'nodes', path: '/api/v1/nodes' });
    const pods = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'pods', path: '/api/v1/pods' });
    const namespaces = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'namespaces', path: '/api/v1/namespaces' });
    const policyInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'isolationpolicies', path: `/apis/${COFFER_GROUP}/${COFFER_VERSION}/isolationpolicies` });
    let policies: IsolationPolicy[] = [];
    const desired = (): AutonomyDesired => ({
      autonomousNamespaces: new Set(options.autonomousNamespaces ?? []),
      policies,
      namespaceLabels: (name) => {
        const ns = namespaces.get(name);
        return ns ? labelsOfNamespace(ns, name) : undefined;
      },
    });

    const queue = new WorkQueue(
      async (nodeName) => {
        const node = nodes.get(nodeName);
        const bound = pods.list().filter((p) => p.spec?.nodeName === nodeName);
        const want = desired();
        for (const a of reconcileNode(node, bound, want)) {
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

    let synced = false;
    const allNodes = () => {
      for (const n of nodes.list()) queue.add(n.metadata.name);
      for (const p of pods.list()) if (p.spec?.nodeName) queue.add(p.spec.nodeName);
    };
    for (const verb of ['add', 'update', 'delete'] as const) {
      nodes.on(verb, (n) => synced && n.metadata?.name && queue.add(n.metadata.name));
      pods.on(verb, (p) => synced && p.spec?.nodeName && queue.add(p.spec.nodeName));
      namespaces.on(verb, (ns) => {
        if (!synced) return;
        for (const p of pods.list()) if (p.metadata?.namespace === ns.metadata?.name && p.spec?.nodeName) queue.add(p.spec.nodeName);
      });
      policyInf.on(verb, () => {
        policies = effectivePolicies(policyInf.list(), (name, err) => ctx.log('isolationpolicy_invalid', { policy: name, error: err.message }));
        if (synced) allNodes();
      });
    }
    const cancel = await startAll([nodes, pods, namespaces, policyInf], () => {
      synced = true;
      policies = effectivePolicies(policyInf.list());
      allNodes();
    });
    ctx.log('controller_started', { controller: 'autonomy', autonomousNamespaces: options.autonomousNamespaces ?? [] });
    return {
      name: 'autonomy',
      settled: () => queue.settled(),
      async stop() {
        cancel();
        queue.stop();
        await Promise.all([nodes.stop(), pods.stop(), namespaces.stop(), policyInf.stop()]);
        rest.close();
      },
    };
  },
};
